"""Claims of the core issue: infinite-width kernels against finite networks, NTK concentration, Gaussianity."""

from functools import lru_cache

import numpy as np
import sympy as sp

from .. import stats
from ..finite_width import finite_width, kernel_shift, output_kurtosis
from ..kernels import layer, nngp_ntk
from ..montecarlo import empirical_kernels, layer_kernels
from ..symbols import n
from .base import bootstrap, claim, combine, compare, compare_all, power_law, seed_for, sized

SIGMA_W2, SIGMA_B2, DEPTH = 1.6, 0.1, 3
SOURCE_KERNELS = ("Neal 1996; Lee et al. 2018, Matthews et al. 2018 (NNGP); Jacot, Gabriel & Hongler 2018 (NTK); "
                  "lecture notes 000/001")


def _inputs():
    """Six fixed inputs in R^8 of different norms, with an antipodal pair (part of the claim, not of the seed)."""
    x = np.random.default_rng(2018).standard_normal((6, 8))
    x *= (np.sqrt(8) * np.array([1.0, 0.6, 1.4, 1.0, 0.8, 1.2]) / np.linalg.norm(x, axis=1))[:, None]
    x[3] = -x[0]
    return x


@lru_cache(maxsize=8)
def _ensemble(activation, size, seed):
    """One ensemble per activation, shared by its NNGP and NTK claims."""
    width = sized(size, 256, 512, 1024)
    networks = sized(size, 60, 200, 600)
    mc = empirical_kernels(_inputs(), None, activation, depth=DEPTH, width=width, networks=networks,
                           seed=seed_for(seed, "kernels.ensemble", activation), sigma_w2=SIGMA_W2, sigma_b2=SIGMA_B2)
    return mc, width


@lru_cache(maxsize=8)
def _nngp_shift(activation, width):
    """|E K̂ - K| per entry of the six inputs: the derived first-order shift (:func:`theory.finite_width.kernel_shift`
    off the diagonal, the single-input ``FiniteWidth.nngp_shift`` on it; checked against Monte Carlo in the tests)
    with the second order bounded by 4/n of it (measured 1.2/n (ReLU) and 1.7/n (erf) at depth 3 from n = 16 and
    32). ReLU's diagonal shift is 0 at every order (its diagonal map is linear)."""
    x = _inputs()
    g = x @ x.T / x.shape[1]
    out = np.empty_like(g)
    for a in range(len(x)):
        out[a, a] = abs(float(finite_width(activation, DEPTH, width, SIGMA_W2, SIGMA_B2, g[a, a]).nngp_shift))
        for b in range(a + 1, len(x)):
            mu = kernel_shift(activation, DEPTH, width, (g[a, a], g[a, b], g[b, b]), SIGMA_W2, SIGMA_B2)
            out[a, b] = out[b, a] = abs(float(mu[1]))
    return out * (1 + 4 / width)


def _agreement(kernel, activation, seed, size):
    mc, width = _ensemble(activation, size, seed)
    exact = getattr(nngp_ntk(_inputs(), None, activation, DEPTH, SIGMA_W2, SIGMA_B2), kernel)
    mean, se = getattr(mc, f"{kernel}_mean"), getattr(mc, f"{kernel}_se")
    if kernel == "nngp":
        bias = _nngp_shift(activation, width)
    else:  # the NTK's two-input mean shift is not derived (FiniteWidth.ntk_shift has the diagonal): a stated bound
        scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
        bias = 2 * (DEPTH - 1) / width * scale

    def plot(fig):
        ax = fig.add_subplot()
        iu = np.triu_indices_from(exact)
        ax.errorbar(exact[iu], mean[iu], yerr=5 * se[iu] + bias[iu], fmt="o", ms=4, capsize=2,
                    label=f"width {width}, {len(getattr(mc, kernel))} networks (5 SE + bias)")
        lim = [min(exact.min(), mean.min()), max(exact.max(), mean.max())]
        ax.plot(lim, lim, "k--", lw=1, label="infinite width")
        ax.set(xlabel=f"{kernel.upper()} (theory)", ylabel=f"{kernel.upper()} (Monte Carlo mean)",
               title=f"{activation}, depth {DEPTH}")
        ax.legend()

    fewer = getattr(nngp_ntk(_inputs(), None, activation, DEPTH - 1, SIGMA_W2, SIGMA_B2), kernel)
    return compare_all(exact, mean, se, bias=bias, rivals={"one layer fewer": fewer}, shown=(0, 1),
                       what="kernel entries", data={"exact": exact, "mean": mean, "se": se, "width": width}, plot=plot)


for _act in ("relu", "erf", "tanh"):
    claim(f"nngp.mc_agreement.{_act}",
          f"The NNGP of a depth-{DEPTH} {_act} network is the output covariance of finite networks "
          f"(mean over an ensemble, up to the O(1/n) bias).", SOURCE_KERNELS,
          lambda a=_act: sp.Eq(sp.Symbol("K_12^(l)"), layer(a).nngp, evaluate=False),
          )(lambda seed, size, a=_act: _agreement("nngp", a, seed, size))
    claim(f"ntk.mc_agreement.{_act}",
          f"The NTK of a depth-{DEPTH} {_act} network is the mean empirical NTK of finite networks.", SOURCE_KERNELS,
          lambda a=_act: sp.Eq(sp.Symbol("Kdot_12^(l)"), layer(a).kdot, evaluate=False),
          )(lambda seed, size, a=_act: _agreement("ntk", a, seed, size))


def _loglog_plot(xlabel, ylabel, title):
    def plot(result, fig):
        ax = fig.add_subplot()
        x, y, y_se = result.data["x"], result.data["y"], result.data["y_se"]
        ax.errorbar(x, y, yerr=2 * y_se, fmt="o", capsize=3, label="Monte Carlo (2 SE)")
        a, s = result.data["fit"][:2]
        ax.plot(x, np.exp(a) * x**s, "-", label=f"fitted leading law: slope {s:.3f}")
        ax.plot(x, np.exp(a) * x[-1] ** (s - result.prediction) * x**result.prediction, "k--",
                label=f"predicted slope {result.prediction:g}")
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
        ax.legend()

    return plot


#: The diagonal of ``ntk.kernel_concentrates``: widths 16 .. 16384 (three decades), drawn exactly in law at O(depth)
#: cost per network (:func:`theory.claims.finite_width.relu_ntk_samples`).
CONCENTRATION_WIDTHS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


@claim("ntk.kernel_concentrates",
       "The empirical NTK concentrates at its infinite-width value: its relative fluctuation falls like n^{-1/2}.",
       "Jacot, Gabriel & Hongler 2018; Hanin & Nica 2020; lecture notes 001",
       n ** sp.Rational(-1, 2))
def _concentrates(seed, size):
    """Two measurements of depth-2 ReLU networks (σ_w² = 2, σ_b² = 0), each an exponent fitted with its leading 1/n
    correction (Var Θ̂/Θ² = c/n + O(1/n²)): the mean over the 4 × 4 entries on four inputs of std/|mean| over an
    ensemble of the package's MLPs at widths 32 .. 1024 (the whole kernel, off-diagonal entries included), and
    √(Var Θ̂/(E Θ̂)²) on the diagonal over three decades of width, from networks drawn exactly in law
    (:func:`theory.claims.finite_width.relu_ntk_samples`; 1/|x|² scales out of the ratio), which pins the exponent."""
    from .finite_width import relative_variance, relu_ntk_samples

    widths = sized(size, [32, 64, 128, 256, 512], [32, 64, 128, 256, 512, 1024], [32, 64, 128, 256, 512, 1024, 2048])
    networks = sized(size, 60, 120, 300)
    x = _inputs()[:4]
    rel, rel_se = [], []
    for width in widths:
        ntk = empirical_kernels(x, None, "relu", depth=2, width=width, networks=networks,
                                seed=seed_for(seed, "ntk.kernel_concentrates", width), sigma_w2=2.0).ntk
        value, se = bootstrap(ntk, lambda s: np.mean(s.std(0, ddof=1) / np.abs(s.mean(0))),
                              seed_for(seed, "ntk.kernel_concentrates", "bootstrap", width))
        rel.append(value)
        rel_se.append(se)
    kernel = power_law(widths, rel, rel_se, -0.5, correction=True, rivals={"1/n": -1.0},
                       what="exponent over the kernel's entries")
    diagonal_widths = sized(size, CONCENTRATION_WIDTHS[:8], CONCENTRATION_WIDTHS, CONCENTRATION_WIDTHS)
    draws = sized(size, 10_000, 50_000, 200_000)
    std, std_se = [], []
    for width in diagonal_widths:
        theta, _ = relu_ntk_samples(2, width, draws, seed_for(seed, "ntk.kernel_concentrates", "diagonal", width))
        value, se = relative_variance(theta)
        std.append(np.sqrt(value))
        std_se.append(se / (2 * np.sqrt(value)))
    diagonal = power_law(diagonal_widths, std, std_se, -0.5, correction=True, rivals={"1/n": -1.0},
                         what="exponent on the diagonal (exact sampling)")
    result = combine(kernel, diagonal, headline=0)
    result.plot = lambda fig: _loglog_plot("width n", "std(NTK) / NTK", "ReLU, depth 2")(kernel, fig)
    return result


@claim("nngp.output_gaussian",
       "As the width grows the output distribution becomes Gaussian: its excess kurtosis vanishes like 1/n, with the "
       "coefficient of the first-order finite-width theory.",
       "Neal 1996; Yaida 2020; Roberts, Yaida & Hanin 2022",
       1 / n)
def _gaussian(seed, size):
    widths = sized(size, [64, 128, 256, 512, 1024], [64, 128, 256, 512, 1024, 2048],
                   [64, 128, 256, 512, 1024, 2048, 4096])
    networks = sized(size, 3000, 24000, 60000)
    x = _inputs()[:1]
    kurt, kurt_se = [], []
    for width in widths:
        # Given the last hidden layer the output is Gaussian with variance K̂, so
        # E[f⁴]/E[f²]² - 3 = 3 Var(K̂)/E[K̂]²: estimate it from K̂ per network; bootstrap its standard error.
        k = layer_kernels(x, "relu", depth=DEPTH, width=width, networks=networks,
                          seed=seed_for(seed, "nngp.output_gaussian", width), sigma_w2=2.0)[:, -1, 0, 0]
        value, se = bootstrap(k, lambda s: 3 * s.var(ddof=1) / s.mean() ** 2,
                              seed_for(seed, "nngp.output_gaussian", "bootstrap", width))
        kurt.append(value)
        kurt_se.append(se)
    # E[f⁴]/E[f²]² - 3 = 3 × the first-order kurtosis V/(nK²) of theory.finite_width (15/n at depth 3): the
    # coefficient is predicted too, and one layer fewer (10/n, Hanin & Nica's 5 per layer) is its rival
    coefficient = [3 * float(output_kurtosis("relu", depth, n, 2, 0, 1).expr * n) for depth in (DEPTH, DEPTH - 1)]
    c, c_se = stats.inverse_coefficient(widths, kurt, kurt_se)
    result = combine(power_law(widths, kurt, kurt_se, -1.0, rivals={"n^-1/2": -0.5}, correction=True),
                     compare(coefficient[0], c, c_se, rivals={"one layer fewer": coefficient[1]},
                             what="coefficient n x excess kurtosis"))
    result.plot = lambda fig: _loglog_plot("width n", "excess kurtosis of f(x)", f"ReLU, depth {DEPTH}")(result, fig)
    return result
