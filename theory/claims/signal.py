r"""Claims of signal propagation: correlations in finite deep tanh networks approach their fixed point at the rate
1/ξ_c of the mean-field theory on both sides of the order-to-chaos line, and like a power of depth on it.

Measurements: ensembles of finite networks sampled exactly in law by Gaussian conditioning
(:func:`theory.montecarlo.layer_kernels`), with inputs whose layer-0 kernel has the fixed-point variance q* (so that
only the correlation moves). A depth-dependent deviation D^l of per-network correlations ĉ^l = K̂₁₂/√(K̂₁₁K̂₂₂) is
averaged over the networks, and its decay is fitted over depth; standard errors come from bootstrapping the networks
(the depths of one network are correlated, so per-depth errors are not independent). Predictions come from
:func:`theory.signal_propagation`; the part of a fitted rate that is the transient of the infinite-width sequence
(the same fit applied to the correlation map iterated from the same start) is stated as the bias.
"""

from functools import lru_cache

import numpy as np
import sympy as sp

from ..montecarlo import layer_kernels
from ..signal import maps, order_chaos_line, signal_propagation
from ..symbols import q11
from .base import bootstrap, claim, combine, compare, compare_all, seed_for, sized

ACTIVATION, SIGMA_B2 = "tanh", 0.05
#: σ_w² on the ordered and on the chaotic side of the critical line (σ_w² ≈ 1.761 at σ_b² = 0.05), with ξ_c ≈ 6, 8.
SIDES = {"ordered": 1.2, "chaotic": 3.5}
#: The layer-0 correlations: 1 - δ against c* = 1 (ordered); c* ± δ, whose symmetric difference cancels the
#: second order of the map (chaotic).
DELTA = {"ordered": 0.02, "chaotic": 0.25}
#: Fitted depths: 1..⌈DEPTHS ξ_c⌉ (the deviation falls by e^{-2.5} ≈ 0.08, well above the noise floor).
DEPTHS = 2.5
#: The critical-line experiment: start at c = 1 - δ₀, depth L, fit window l = L_FIT..L.
CRITICAL_DELTA, CRITICAL_DEPTH, CRITICAL_FIT = 0.5, 60, 10
SOURCE = ("Poole et al. 2016; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017 (Fig. 1, eqs. 7-9); "
          "Roberts, Yaida & Hanin 2022, ch. 5")

_XI_C, _CHI_C, _CHI_1 = sp.Symbol(r"\xi_c"), sp.Symbol(r"\chi_c"), sp.Symbol(r"\chi_1")


def _inputs(q_star, correlations, sigma_w2, sigma_b2):
    """Inputs x₀, x₁, ... in R³ whose layer-0 kernel σ_b² + σ_w² x·x'/d has variance q* and correlation
    ``correlations[j]`` between x₀ and x_{j+1} (x₁, x₂ on either side of x₀ in a plane)."""
    g11 = (q_star - sigma_b2) / sigma_w2
    radius = np.sqrt(3 * g11)
    rows = [[radius, 0.0, 0.0]]
    for j, c in enumerate(correlations):
        angle = np.arccos(np.clip((c * q_star - sigma_b2) / (sigma_w2 * g11), -1.0, 1.0))
        rows.append([radius * np.cos(angle), (-1) ** j * radius * np.sin(angle), 0.0])
    return np.array(rows)


def _correlation(K, j):
    """ĉ(x₀, x_j) per network and layer from the per-network kernels K of shape (E, L + 1, N, N)."""
    return K[..., 0, j] / np.sqrt(K[..., 0, 0] * K[..., j, j])


def _sequence(q_star, c0, sigma_w2, depth):
    """c^0..c^depth of the infinite-width correlation map at variance q*, from c^0 = c0."""
    f = maps(ACTIVATION).correlation_f
    out = [c0]
    for _ in range(depth):
        out.append(float(f(q_star, out[-1], sigma_w2, SIGMA_B2)))
    return np.array(out)


def _slope(x, y, weights):
    """The weighted least-squares slope of log y on x (weights = 1/SE(log y)²)."""
    design = np.stack([np.ones_like(x), x], axis=1)
    normal = design.T @ (weights[:, None] * design)
    return float(np.linalg.solve(normal, design.T @ (weights * np.log(y)))[1])


def _rate(l, weights):
    """Statistic: the rate λ of D^l ∝ e^{-λl}, fitted to the mean over networks (rows of the samples)."""
    return lambda samples: -_slope(l, samples.mean(0), weights)


def _weights(samples):
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(len(samples))
    return (mean / se) ** 2


# --------------------------------------------------------------------------------------------------------------
# signal.depth_scale
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _side(side, seed, size):
    """One side of the line: (theory, depths l, deviation D^l per network, theory's D^l, rate, its SE, theory's
    fitted rate)."""
    sw = SIDES[side]
    theory = signal_propagation(ACTIVATION, sw, SIGMA_B2)
    delta = DELTA[side]
    depth = int(np.ceil(DEPTHS * theory.xi_c))
    if side == "ordered":  # the deviation shrinks with its noise (c = 1 is exact): a smaller ensemble suffices
        width, networks = sized(size, 300, 1000, 2000), sized(size, 200, 500, 2000)
    else:
        width, networks = sized(size, 500, 2000, 4000), sized(size, 300, 2000, 4000)
    if side == "ordered":  # c* = 1: D = 1 - ĉ(x₀, x₁) from 1 - δ
        starts = (1 - delta,)
    else:  # D = ĉ(x₀, x₁) - ĉ(x₀, x₂) from c* + δ and c* - δ
        starts = (theory.c_star + delta, theory.c_star - delta)
    X = _inputs(theory.q_star, starts, sw, SIGMA_B2)
    K = layer_kernels(X, ACTIVATION, depth=depth, width=width, networks=networks, sigma_w2=sw, sigma_b2=SIGMA_B2,
                      seed=seed_for(seed, "signal.depth_scale", side, size))
    seqs = [_sequence(theory.q_star, c, sw, depth) for c in starts]
    if side == "ordered":
        D, exact = 1 - _correlation(K, 1), 1 - seqs[0]
    else:
        D, exact = _correlation(K, 1) - _correlation(K, 2), seqs[0] - seqs[1]
    l = np.arange(1, depth + 1, dtype=float)
    D, exact = D[:, 1:], exact[1:]
    weights = _weights(D)
    rate, se = bootstrap(D, _rate(l, weights), seed_for(seed, "signal.depth_scale", side, "bootstrap"))
    return theory, l, D, exact, rate, se, -_slope(l, exact, weights), width


def _depth_scale_plot(sides):
    def plot(fig):
        ax = fig.add_subplot()
        for side, color in (("ordered", "C0"), ("chaotic", "C3")):
            theory, l, D, exact, rate, se, _, width = sides[side]
            mean, err = D.mean(0), D.std(0, ddof=1) / np.sqrt(len(D))
            ax.errorbar(l, mean, yerr=2 * err, fmt="o", ms=3, color=color,
                        label=f"{side}, $\\sigma_w^2$ = {SIDES[side]:g}: measured $\\xi$ = {1 / rate:.2f}")
            ax.plot(l, exact, "-", color=color, lw=1, label=f"infinite width; $\\xi_c$ = {theory.xi_c:.2f}")
        ax.set(yscale="log", xlabel="depth l", ylabel="deviation from the fixed point",
               title=f"tanh, $\\sigma_b^2$ = {SIGMA_B2:g}, width {width} (2 SE)")
        ax.legend(fontsize=8)

    return plot


@claim("signal.depth_scale",
       "In finite wide tanh networks (σ_b² = 0.05) the correlation of two inputs approaches its fixed point c* "
       "geometrically, with the depth scale ξ_c = -1/log χ_c of the mean-field theory, on both sides of the "
       "order-to-chaos line (σ_w² = 1.2, ordered; 3.5, chaotic).", SOURCE,
       lambda: sp.Eq(_XI_C, -1 / sp.log(_CHI_C), evaluate=False))
def _depth_scale(seed, size):
    sides = {side: _side(side, seed, size) for side in SIDES}
    names = list(SIDES)
    theories = [sides[s][0] for s in names]
    rates, rate_se, transient = (np.array([sides[s][k] for s in names]) for k in (4, 5, 6))
    return depth_scale_result(theories, 1 / rates, rate_se / rates**2,  # delta method: SE(1/λ) = SE(λ)/λ²
                              np.abs(1 / transient - [t.xi_c for t in theories]),
                              data={"sigma_w2": [SIDES[s] for s in names], "width": sides["chaotic"][7]},
                              plot=_depth_scale_plot(sides))


def depth_scale_result(theories, measured, se, bias, **extra):
    """The criterion of ``signal.depth_scale``: the measured depth scales (one per :class:`SignalPropagation` in
    ``theories``) against ξ_c within z SE + ``bias`` (the transient of the fit), excluding the rivals ξ_q and
    1/|log χ₁| (χ₁ at c = 1 in place of χ_c at c*; the same as ξ_c in the ordered phase)."""
    predicted = np.array([t.xi_c for t in theories])
    xi_q = np.array([t.xi_q for t in theories])
    slope_at_one = np.array([1 / abs(np.log(t.chi_1)) if t.chi_1 > 1 else t.xi_c for t in theories])
    data = {"xi_c": predicted, "measured": np.asarray(measured), "se": np.asarray(se), "bias": np.asarray(bias),
            **extra.pop("data", {})}
    return compare_all(predicted, measured, se, bias=bias, shown=len(theories) - 1, what="sides of the critical line",
                       rivals={"ξ_q (the length map's depth scale)": xi_q,
                               "1/|log χ₁| (the slope at c = 1, not at c*)": slope_at_one},
                       data=data, **extra)


# --------------------------------------------------------------------------------------------------------------
# signal.critical_line
# --------------------------------------------------------------------------------------------------------------


def _exponent(l, offset, weights):
    """Statistic: the log-log slope of 1/D̄^l - 1/D^0 on l (1/(1 - c^l) grows linearly in l at criticality)."""
    def statistic(samples):
        y = 1 / samples.mean(0) - offset
        return _slope(np.log(l), y, weights)

    return statistic


@lru_cache(maxsize=4)
def _critical(seed, size):
    sw = float(order_chaos_line(ACTIVATION, SIGMA_B2))
    theory = signal_propagation(ACTIVATION, sw, SIGMA_B2)
    width, networks = sized(size, 500, 2000, 4000), sized(size, 150, 500, 2000)
    X = _inputs(theory.q_star, (1 - CRITICAL_DELTA,), sw, SIGMA_B2)
    K = layer_kernels(X, ACTIVATION, depth=CRITICAL_DEPTH, width=width, networks=networks, sigma_w2=sw,
                      sigma_b2=SIGMA_B2, seed=seed_for(seed, "signal.critical_line", size))
    window = slice(CRITICAL_FIT, CRITICAL_DEPTH + 1)
    l = np.arange(CRITICAL_DEPTH + 1, dtype=float)[window]
    D = (1 - _correlation(K, 1))[:, window]
    weights = _weights(D)
    mean, se = D.mean(0), D.std(0, ddof=1) / np.sqrt(len(D))
    inverse_weights = (mean * (1 / mean - 1 / CRITICAL_DELTA) / se) ** 2  # 1/SE(log(1/D - 1/δ₀))²
    seqs = {f: 1 - _sequence(signal_propagation(ACTIVATION, f * sw, SIGMA_B2).q_star, 1 - CRITICAL_DELTA, f * sw,
                             CRITICAL_DEPTH)[window] for f in (0.9, 1.0, 1.1)}
    rate = bootstrap(D, _rate(l, weights), seed_for(seed, "signal.critical_line", "rate"))
    exponent = bootstrap(D, _exponent(l, 1 / CRITICAL_DELTA, inverse_weights),
                         seed_for(seed, "signal.critical_line", "exponent"))
    predicted = {f: (-_slope(l, s, weights), _slope(np.log(l), 1 / s - 1 / CRITICAL_DELTA, inverse_weights))
                 for f, s in seqs.items()}
    return sw, theory, l, D, seqs, rate, exponent, predicted, width


def _critical_plot(sw, l, D, seqs, width):
    def plot(fig):
        ax = fig.add_subplot()
        mean, err = D.mean(0), D.std(0, ddof=1) / np.sqrt(len(D))
        ax.errorbar(l, mean, yerr=2 * err, fmt="o", ms=3, color="k", label=f"measured, width {width} (2 SE)")
        for f, style in ((0.9, "C0--"), (1.0, "k-"), (1.1, "C3--")):
            ax.plot(l, seqs[f], style, lw=1, label=f"infinite width, $\\sigma_w^2$ = {f * sw:.4g}")
        ax.set(xscale="log", yscale="log", xlabel="depth l", ylabel="1 - c^l",
               title=f"tanh on the critical line ($\\sigma_b^2$ = {SIGMA_B2:g})")
        ax.legend(fontsize=8)

    return plot


@claim("signal.critical_line",
       "At the predicted critical σ_w² (χ₁ = 1; tanh, σ_b² = 0.05) the correlation of two inputs approaches 1 like a "
       "power of depth, 1/(1 - c^l) growing like l (the infinite-width map's exponent over l = 10..60, 1 as l → ∞), "
       "not exponentially: the exponential fit's rate excludes the ordered and chaotic rates 1/ξ_c at σ_w² ∓ 10 %.",
       SOURCE,
       lambda: sp.Eq(_CHI_1, maps(ACTIVATION).chi_1.xreplace({q11: sp.Symbol("q^*", positive=True)}), evaluate=False))
def _critical_line(seed, size):
    sw, theory, l, D, seqs, rate, exponent, predicted, width = _critical(seed, size)
    return critical_result(sw, rate, exponent, predicted,
                           data={"sigma_w2": sw, "q_star": theory.q_star, "rate": rate, "exponent": exponent,
                                 "predicted": predicted, "width": width},
                           plot=_critical_plot(sw, l, D, seqs, width))


def critical_result(sigma_w2, rate, exponent, predicted, **extra):
    """The criteria of ``signal.critical_line``: the measured (exponent, SE) of 1/(1 - c^l) - 1/(1 - c^0) in l
    and (rate, SE) of the exponential fit of 1 - c^l against ``predicted`` {f: (rate, exponent)}, the same fits of
    the infinite-width sequences at f σ_w² (f = 1 the prediction; 0.9, 1.1 the rivals of the exponent), and the
    rates 1/ξ_c at 0.9 σ_w² (ordered) and 1.1 σ_w² (chaotic) as the rivals of the rate."""
    ordered = signal_propagation(ACTIVATION, 0.9 * sigma_w2, SIGMA_B2)
    chaotic = signal_propagation(ACTIVATION, 1.1 * sigma_w2, SIGMA_B2)
    power = compare(predicted[1.0][1], *exponent,
                    rivals={f"ordered, σ_w² = {0.9 * sigma_w2:.4g} (same fit)": predicted[0.9][1],
                            f"chaotic, σ_w² = {1.1 * sigma_w2:.4g} (same fit)": predicted[1.1][1],
                            "1 - c ~ l^-2 (as for ReLU)": 2.0})
    exponential = compare(predicted[1.0][0], *rate,
                          rivals={f"ordered rate 1/ξ_c at σ_w² = {0.9 * sigma_w2:.4g}": 1 / ordered.xi_c,
                                  f"chaotic rate 1/ξ_c at σ_w² = {1.1 * sigma_w2:.4g}": 1 / chaotic.xi_c})
    return combine(power, exponential, **extra)
