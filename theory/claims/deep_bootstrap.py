"""Claims of the Deep Bootstrap topic: Real World vs Ideal World in the linear toy and in kernel gradient descent."""

import numpy as np
import scipy.interpolate
import sympy as sp

from .. import deep_bootstrap as bs
from .. import scaling as sc
from ..numeric import lambdify
from .base import claim, compare, seed_for, sized
from .scaling import KERNEL, SPHERE, _exponent_result

SOURCE = "Nakkiran, Neyshabur & Sedghi 2021, The Deep Bootstrap (toy example, Figure 7); lecture notes 002"
LINEAR = dict(identity=dict(n=20, d=50, batch=10, lr=1.0, steps=300, runs=(40, 300, 1000)),
              sign=dict(n=100, d=10, batch=20, lr=0.1, steps=400, runs=(40, 400, 1200)))


def _worlds(activation, seed, size):
    """The ensemble, T(n), and per run the bootstrap gap at T less the Real World's unconverged part, with the
    prediction: the exact mean least-squares risk minus the Ideal World's exact mean error at T."""
    cfg = LINEAR[activation]
    runs = sized(size, *cfg["runs"])
    worlds = bs.linear_worlds(activation, cfg["n"], cfg["d"], cfg["steps"], cfg["batch"], cfg["lr"], runs,
                              seed_for(seed, f"deep_bootstrap.{activation}"))
    T = bs.stopping_time(worlds.real_train, worlds.floor)
    if T is None:
        raise RuntimeError(f"the Real World did not reach its stopping time in {cfg['steps']} steps")
    real = float(lambdify((bs.n, bs.d), bs.least_squares_risk(activation))(cfg["n"], cfg["d"]))
    ideal = float(lambdify((bs.d, bs.eta, bs.b, bs.t), bs.ideal_world_error(activation))(
        cfg["d"], cfg["lr"], cfg["batch"], T))
    # The Real World at T is its limit plus the part it has not converged yet, real_mean[T] - limit, computed
    # exactly per run (its minibatch average given its data); what remains of its SGD is mean-zero noise.
    unconverged = worlds.real_mean[:, T] - worlds.limit
    gap = worlds.real_test[:, T] - unconverged - worlds.ideal_test[:, T]
    return cfg, worlds, T, real, ideal, gap, unconverged


def _plot(worlds, T, real_pred, ideal_curve, title):
    def plot(fig):
        ax = fig.add_subplot()
        steps = np.arange(worlds.real_test.shape[1])
        for curve, label in ((worlds.real_test, "Real World test"), (worlds.ideal_test, "Ideal World test"),
                             (worlds.real_train, "Real World train")):
            mean = curve.mean(axis=0)
            ax.plot(steps, mean, label=label)
        ax.plot(steps, ideal_curve(steps), "k:", label="Ideal World (theory)")
        ax.axhline(real_pred, color="gray", ls="--", label="Real World limit (theory)")
        ax.axvline(T, color="k", lw=0.8, label=f"stopping time T(n) = {T}")
        ax.set(xlabel="SGD step t", ylabel="mean squared error", yscale="log", title=title)
        ax.legend(fontsize=8)

    return plot


def _ideal_curve(activation, cfg):
    curve = lambdify((bs.d, bs.eta, bs.b, bs.t), bs.ideal_world_error(activation))
    return lambda steps: curve(cfg["d"], cfg["lr"], cfg["batch"], steps)


def _prediction(activation):
    return sp.Eq(sp.Symbol("epsilon"), bs.least_squares_risk(activation) - bs.ideal_world_error(activation),
                 evaluate=False)


@claim("deep_bootstrap.linear",
       "Well-specified linear regression ($\\sigma(x) = x$, n = 20 samples, d = 50) has a large bootstrap error: at "
       "the stopping time the Ideal World has nearly learned $\\beta^*$ (error $\\rho^T$) while the Real World is "
       "stuck at the ridgeless risk $r^2(1 - n/d)$ (up to its unconverged part, computed exactly per run).", SOURCE,
       lambda: _prediction("identity"))
def _linear(seed, size):
    cfg, worlds, T, real_pred, ideal_pred, gap, unconverged = _worlds("identity", seed, size)
    # No bias: E|(I - P)β*|²/d = 1 - n/d and E|β_T - β*|²/d = ρ^T exactly in the Ideal World (Gaussian inputs).
    relative = float(gap.mean() / worlds.real_test[:, T].mean())
    return compare(real_pred - ideal_pred, gap.mean(), gap.std(ddof=1) / np.sqrt(gap.size),
                   rivals={"no bootstrap error": 0.0},
                   data={"T": T, "relative": relative, "unconverged": float(unconverged.mean()), "worlds": worlds},
                   plot=_plot(worlds, T, real_pred, _ideal_curve("identity", cfg),
                              f"sigma(x) = x, n = {cfg['n']}, d = {cfg['d']}: bootstrap error {relative:.0%} of test "
                              "error"))


@claim("deep_bootstrap.sign",
       "Misspecified regression ($\\sigma = \\mathrm{sign}$, n = 100 samples, d = 10) has a small bootstrap error: "
       "the Real World's least-squares risk, $s^2(1 + d/(n-d-1))$ up to $O(1/n^2)$ (derived exactly), less the Ideal "
       "World's error at T(n), $s^2$ up to its SGD noise and unconverged part (derived exactly): about $d/(n-1)$ of "
       "the Real World's test error, with $s^2 = 1 - 2/\\pi$ the error of the best linear predictor.", SOURCE,
       lambda: _prediction("sign"))
def _sign(seed, size):
    cfg, worlds, T, real_pred, ideal_pred, gap, unconverged = _worlds("sign", seed, size)
    # Control variate: the limit's excess |δ|² moves with its in-sample excess |Xδ|²/n, whose mean s² d/n is exact
    # (least_squares_fit); the coefficient is fixed at 1 (not fitted), so the estimate stays unbiased.
    fit = float(lambdify((bs.n, bs.d), bs.least_squares_fit("sign"))(cfg["n"], cfg["d"]))
    reduced = gap - (worlds.fit - fit)
    relative = float(gap.mean() / worlds.real_test[:, T].mean())
    return compare(real_pred - ideal_pred, reduced.mean(), reduced.std(ddof=1) / np.sqrt(reduced.size),
                   rivals={"no bootstrap error": 0.0},
                   data={"T": T, "relative": relative, "unconverged": float(unconverged.mean()), "worlds": worlds},
                   plot=_plot(worlds, T, real_pred, _ideal_curve("sign", cfg),
                              f"sign, n = {cfg['n']}, d = {cfg['d']}: bootstrap error {relative:.0%} of test error"))


@claim("deep_bootstrap.kernel",
       "In NTK gradient descent (depth-2 ReLU NTK on $S^2$, target from its Gaussian process) the Real World's test "
       "error at a fixed step exceeds the Ideal World's, computed from the Funk-Hecke spectrum, by a bootstrap error "
       "falling like $1/n$.", SOURCE + "; Funk-Hecke formula",
       lambda: sp.Eq(sp.Symbol("alpha_n"), 1))
def _kernel(seed, size):
    lr, step, tests = 0.5, 20, 150
    sizes = np.array([40, 80, 160, 320, 640])
    base = sized(size, 2, 4, 12)
    spectrum = sc.kernel_spectrum(SPHERE, 150, kind="ntk", **KERNEL)
    grid = np.linspace(0, np.pi, 2049)
    kern = scipy.interpolate.CubicSpline(grid, sc.sphere_kernel(grid, kind="ntk", **KERNEL))
    unresolved = float(kern(0.0)) - float(np.sum(spectrum.eigenvalue * spectrum.multiplicity))
    ideal = float(bs.ideal_kernel_error(spectrum, lr, step)[step]) + unresolved  # the tail has not moved by t = 20
    rng = np.random.default_rng(seed_for(seed, "deep_bootstrap.kernel"))
    gaps, ses, counts = [], [], []
    for m in sizes:
        values = []
        for _ in range(base * 640 // m):
            x = rng.standard_normal((m + tests, SPHERE))
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            gram = kern(np.arccos(np.clip(x @ x.T, -1, 1)))
            np.fill_diagonal(gram, kern(0.0))
            values.append(bs.kernel_worlds(gram[:m, :m], gram[:m, m:], np.diag(gram)[m:], lr, step)[step] - ideal)
        gaps.append(np.mean(values))
        ses.append(np.std(values, ddof=1) / np.sqrt(len(values)))
        counts.append(len(values))
    fit = sc.fit_power_law(sizes, gaps, ses, offset=False, correction=True, se_dof=min(counts) - 1)
    return _exponent_result(fit, 1.0, sizes, np.array(gaps), np.array(ses),
                            ("samples n", f"Real(n, t) - Ideal(t) at t = {step}", "kernel gradient descent, NTK on S^2"),
                            {"n^-1/2 (a fluctuation)": 0.5}, data={"ideal": ideal})
