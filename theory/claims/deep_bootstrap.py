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
LINEAR = dict(identity=dict(n=20, d=50, batch=10, lr=1.0, steps=300),
              sign=dict(n=100, d=10, batch=20, lr=0.1, steps=500))


def _worlds(activation, seed, size):
    cfg = LINEAR[activation]
    runs = sized(size, 40, 150, 500)
    worlds = bs.linear_worlds(activation, cfg["n"], cfg["d"], cfg["steps"], cfg["batch"], cfg["lr"], runs,
                              seed_for(seed, f"deep_bootstrap.{activation}"))
    T = bs.stopping_time(worlds.real_train, worlds.floor)
    if T is None:
        raise RuntimeError(f"the Real World did not reach its stopping time in {cfg['steps']} steps")
    real, ideal = (lambdify((bs.n, bs.d, bs.eta, bs.b, bs.t), e) for e in bs.predictions(activation))
    at = (cfg["n"], cfg["d"], cfg["lr"], cfg["batch"], T)
    gap = worlds.real_test[:, T] - worlds.ideal_test[:, T]
    return cfg, worlds, T, float(real(*at)), float(ideal(*at)), gap


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


@claim("deep_bootstrap.linear",
       "Well-specified linear regression ($\\sigma(x) = x$, n = 20 samples, d = 50) has a large bootstrap error: at "
       "the stopping time the Ideal World has nearly learned $\\beta^*$ while the Real World is stuck at the "
       "ridgeless risk $r^2(1 - n/d)$.", SOURCE,
       lambda: sp.Eq(sp.Symbol("epsilon"), bs.predictions("identity")[0] - bs.predictions("identity")[1],
                     evaluate=False))
def _linear(seed, size):
    cfg, worlds, T, real_pred, ideal_pred, gap = _worlds("identity", seed, size)
    # The Real World's error is |(I - P)β*|²/d (mean 1 - n/d exactly) plus its unconverged part inside the span of
    # the data, which its train loss bounds: |P e|²/d <= n · train / (d · λ_min(X Xᵀ)) per run.
    X = worlds.inputs
    smallest = np.linalg.eigvalsh(X @ np.transpose(X, (0, 2, 1)))[:, 0]
    bound = float(np.mean(cfg["n"] * worlds.real_train[:, T] / (cfg["d"] * smallest)))
    relative = float(gap.mean() / worlds.real_test[:, T].mean())
    rho = lambdify((bs.d, bs.eta, bs.b), bs.ideal_world_rate())(cfg["d"], cfg["lr"], cfg["batch"])
    return compare(real_pred - ideal_pred, gap.mean(), gap.std(ddof=1) / np.sqrt(gap.size), bias=bound,
                   rivals={"no bootstrap error": 0.0},
                   data={"T": T, "relative": relative, "bound": bound, "worlds": worlds},
                   plot=_plot(worlds, T, real_pred, lambda s: rho**s, f"sigma(x) = x, n = {cfg['n']}, d = {cfg['d']}: "
                              f"bootstrap error {relative:.0%} of test error"))


@claim("deep_bootstrap.sign",
       "Misspecified regression ($\\sigma = \\mathrm{sign}$, n = 100 samples, d = 10) has a small bootstrap error: "
       "$s^2 d/(n-d-1)$, about $d/(n-1)$ of the Real World's test error, with $s^2 = 1 - 2/\\pi$ the error of the "
       "best linear predictor.", SOURCE,
       lambda: sp.Eq(sp.Symbol("epsilon"), sp.simplify(bs.predictions("sign")[0] - bs.predictions("sign")[1]),
                     evaluate=False))
def _sign(seed, size):
    cfg, worlds, T, real_pred, ideal_pred, gap = _worlds("sign", seed, size)
    s2 = float(bs.misspecification("sign")[1])
    # Stated bias: the O(1/n) correction of the least-squares formula (the residual σ(u) - cu depends on u), at most
    # s²/n; and at T(n) each world is within 1% of the initial error (1) of its limit: the Real World by the stopping
    # rule, the Ideal World by its mean dynamics c²(1 - η/d)^{2T} plus SGD noise (both checked in the tests).
    bias = s2 / cfg["n"] + 0.01
    relative = float(gap.mean() / worlds.real_test[:, T].mean())
    return compare(real_pred - ideal_pred, gap.mean(), gap.std(ddof=1) / np.sqrt(gap.size), bias=bias,
                   rivals={"no bootstrap error": 0.0},
                   data={"T": T, "relative": relative, "worlds": worlds},
                   plot=_plot(worlds, T, real_pred, lambda s: np.full(s.shape, ideal_pred),
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
