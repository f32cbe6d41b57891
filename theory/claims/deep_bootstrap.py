"""Claims of the Deep Bootstrap topic: Real World vs Ideal World in the linear toy and in kernel gradient descent."""

import numpy as np
import scipy.interpolate
import sympy as sp

from .. import deep_bootstrap as bs
from .. import scaling as sc
from .. import stats
from ..numeric import lambdify
from .base import claim, combine, compare, seed_for, sized
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
       "falling like $1/n$, with the derived coefficient $c_1(t)$: after one step exactly "
       "$\\eta^2(\\tau_1\\tau_2 - \\tau_3)/n$, $\\tau_a = \\mathrm{tr}\\,K^a$.", SOURCE + "; Funk-Hecke formula",
       lambda: sp.Tuple(sp.Eq(sp.Symbol("alpha_n"), 1), sp.Eq(sp.Symbol("c_1(1)"), bs.bootstrap_coefficient(1))))
def _kernel(seed, size):
    lr, step, sizes = 0.5, 20, np.array([40, 80, 160, 320, 640])
    base, extra = sized(size, 2, 4, 12), sized(size, 200, 1500, 4000)
    spectrum = sc.kernel_spectrum(SPHERE, 150, kind="ntk", **KERNEL)
    mu, count = spectrum.eigenvalue, spectrum.multiplicity
    grid = np.linspace(0, np.pi, 2049)
    kern = scipy.interpolate.CubicSpline(grid, sc.sphere_kernel(grid, kind="ntk", **KERNEL))
    # E_x'[Θ(x, x')Θ(x', y)] = Σ_k μ_k² N(d, k) P_k(x·y) (Funk-Hecke): test points integrated out exactly
    second = scipy.interpolate.CubicSpline(grid, np.polynomial.legendre.legval(np.cos(grid), mu**2 * count))
    prior = float(kern(0.0))
    unresolved = prior - float(np.sum(mu * count))
    ideal = bs.ideal_kernel_error(spectrum, lr, step) + unresolved  # the tail has not moved by t = 20
    traces = {bs.tau[1]: prior, **{bs.tau[a]: float(np.sum(count * mu**a)) for a in (2, 3)}}
    coefficient = float(bs.bootstrap_coefficient(1).subs(traces).subs(bs.eta, lr))
    rng = np.random.default_rng(seed_for(seed, "deep_bootstrap.kernel"))

    def gaps(m, draws):
        out = []
        for _ in range(draws):
            x = rng.standard_normal((m, SPHERE))
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            angles = np.arccos(np.clip(x @ x.T, -1, 1))
            np.fill_diagonal(angles, 0.0)
            out.append(bs.kernel_population_worlds(kern(angles), second(angles), prior, lr, step) - ideal)
        return np.array(out)

    curves = [gaps(m, base * 640 // m) for m in sizes]
    gap, se = (np.array(v) for v in zip(*(stats.mean_se(c[:, step]) for c in curves)))
    fit = sc.fit_power_law(sizes, gap, se, offset=False, correction=True, se_dof=min(len(c) for c in curves) - 1)
    exponent = _exponent_result(fit, 1.0, sizes, gap, se, ("samples n", f"Real(n, t) - Ideal(t) at t = {step}",
                                                           "kernel gradient descent, NTK on S^2"),
                                {"n^-1/2 (a fluctuation)": 0.5}, data={"ideal": float(ideal[step])})
    # After one step n·(Real - Ideal) has mean c₁(1) exactly at every n: pooled over all draws, and more at n = 40.
    scaled = np.concatenate([m * c[:, 1] for m, c in zip(sizes, curves)] + [sizes[0] * gaps(sizes[0], extra)[:, 1]])
    mean, error = stats.mean_se(scaled)
    one_step = compare(coefficient, mean, error, what="n (Real - Ideal) after one step",
                       rivals={"no bootstrap error": 0.0,
                               "no coincident draws (eta^2 tau1 tau2)": lr**2 * traces[bs.tau[1]] * traces[bs.tau[2]]})
    return combine(exponent, one_step, data={**exponent.data, "one_step": scaled})
