r"""Claims of the parameterizations issue: the coordinate check of abc-parameterized networks against the exponents
of the scaling calculus, and the abc symmetry on finite networks.

Every setup trains the same networks (per width, the same unit Gaussians scaled by n^{-b_l}) on one fixed batch,
with the target shifted by f_0 so that every network starts from the residual -y. At each width the mean
|coordinate| of Δh^l_t and Δf_t is averaged over the networks; the log-log slope against the width
(:func:`~theory.claims.base.power_law`) must cover the exponent that
:meth:`theory.parameterizations.Parameterization.sizes` derives, and some slope must exclude the exponent of a
rival parameterization (:data:`RIVALS`); a claim's slopes share its family-wise level. The standard errors pool all widths
(:func:`_mean_se`): with a handful of networks per width, a per-width sample SD that comes out small by chance
would otherwise pin the fit.
"""

from functools import lru_cache

import numpy as np
import scipy.special
import sympy as sp

from ..montecarlo.coordinate_check import coordinate_check
from ..parameterizations import MF, MUP, MUP_ADAM, NTK, SP, abc
from .base import claim, combine, compare, power_law, seed_for, sized

SOURCE = "Yang & Hu 2021 (Tensor Programs IV), Sec. 3 and Table 1; Yang et al. 2022 (Tensor Programs V), Table 3"
DEPTH, STEPS = 2, 2
#: name -> (parameterization, η): rates at which the smallest networks already follow their width scaling.
SETUPS = {
    "mup": (MUP(DEPTH), 0.5),
    "mup_adam": (MUP_ADAM(DEPTH), 0.05),
    "ntk": (NTK(DEPTH), 0.5),
    "sp_c1": (SP(DEPTH, c=1), 0.5),
    "sp_c0": (SP(DEPTH), 0.1),
    "mf": (MF(1), 0.5),
}
#: name -> the parameterization whose exponents the same measurements must exclude (same depth).
RIVALS = {"mup": ("NTK", NTK(DEPTH)), "mup_adam": ("NTK", NTK(DEPTH)), "ntk": ("muP", MUP(DEPTH)),
          "sp_c1": ("NTK", NTK(DEPTH)), "sp_c0": ("SP with eta/n", SP(DEPTH, c=1)), "mf": ("NTK", NTK(1))}


def _batch():
    """Four fixed inputs on the sphere |x|² = d = 8 and targets ±1 (part of the claim, not of the seed)."""
    rng = np.random.default_rng(2021)
    x = rng.standard_normal((4, 8))
    x *= np.sqrt(8) / np.linalg.norm(x, axis=1, keepdims=True)
    return x, rng.choice([-1.0, 1.0], 4)


@lru_cache(maxsize=4)
def _checks(size, seed):
    """One coordinate check of every setup, shared by the claims below."""
    widths = sized(size, [64, 128, 256, 512, 1024], [64, 128, 256, 512, 1024, 2048],
                   [64, 128, 256, 512, 1024, 2048, 4096])
    networks = sized(size, 4, 16, 24)
    X, Y = _batch()
    return coordinate_check(SETUPS, X, Y, widths, steps=STEPS, networks=networks,
                            seed=seed_for(seed, "parameterizations.coordinate_check"))


def _series(p, steps, layers=True, output=True):
    """[(label, quantity, index)] for Δh^l_t (l = 1..L) and Δf_t, t in ``steps``."""
    out = []
    for t in steps:
        if layers:
            out += [(f"dh{l + 1}_{t}", "dh", (t - 1, l)) for l in range(p.depth)]
        if output:
            out.append((f"df_{t}", "df", (t - 1,)))
    return out


def _exponent(p, quantity, index):
    sizes = p.sizes(STEPS)
    return sizes.dh[index[0]][index[1]] if quantity == "dh" else sizes.df[index[0]]


def _prediction(p, steps=range(1, STEPS + 1)):
    """The predicted exponents as a matrix: one row per step t, columns Δh^1_t .. Δh^L_t, Δf_t."""
    sizes = p.sizes(STEPS)
    rows = [list(sizes.dh[t - 1]) + [sizes.df[t - 1]] for t in steps]
    head = ", ".join([rf"\Delta h^{l + 1}_t" for l in range(p.depth)] + [r"\Delta f_t"])
    return sp.Eq(sp.Symbol(rf"\mathrm{{slopes}}({head})"), sp.Matrix(rows), evaluate=False)


def _mean_se(values, widths):
    r"""Means over networks (axis 1 of ``values``, shape (W, E)) and their standard errors, pooled over widths.

    The relative spread s_n between networks of a per-network average falls like a power of the width (n^{-1/2}
    by the central limit theorem); log s_n = α + β log n is fitted by least squares over the W widths (W(E - 1)
    degrees of freedom instead of E - 1 per width), after removing the bias of the log of a sample SD with
    k = E - 1 degrees of freedom, E[log s] - log σ = (ψ(k/2) - log(k/2))/2. SE_n = e^{α + β log n} mean_n / √E.
    """
    E = values.shape[1]
    mean = values.mean(axis=1)
    k = E - 1
    bias = (scipy.special.digamma(k / 2) - np.log(k / 2)) / 2
    design = np.stack([np.ones(len(widths)), np.log(widths)], axis=1)
    coef = np.linalg.lstsq(design, np.log(values.std(axis=1, ddof=1) / mean) - bias, rcond=None)[0]
    return mean, np.exp(design @ coef) * mean / np.sqrt(E)


def _slopes(name, series, seed, size):
    """Fit every series of setup ``name``; the claim holds iff every interval covers its predicted exponent and
    some interval excludes the rival parameterization's exponent."""
    p = SETUPS[name][0]
    check = _checks(size, seed)[name]
    fits = {}
    for label, quantity, index in series:
        mean, se = _mean_se(getattr(check, quantity)[(slice(None), slice(None)) + index], check.widths)
        fits[label] = power_law(check.widths, mean, se, float(_exponent(p, quantity, index)), what=label)
    rival_name, rival = RIVALS[name]
    data = {"widths": check.widths, "slopes": {k: (r.estimate, r.interval, r.prediction) for k, r in fits.items()},
            "check": check}
    return combine(*fits.values(), headline=-1, data=data, plot=lambda fig: _plot(fig, p, check, series, fits),
                   rivals={f"{rival_name} (its exponents)": [float(_exponent(rival, q, i)) for _, q, i in series]})


def _plot(fig, p, check, series, fits):
    """A coordinate check: one log-log panel per step, one line per layer (and f), predicted slopes dashed."""
    steps = sorted({index[0] for _, _, index in series})
    for panel, t in enumerate(steps):
        ax = fig.add_subplot(1, len(steps), panel + 1)
        for label, quantity, index in series:
            if index[0] != t:
                continue
            mean, se = fits[label].data["y"], fits[label].data["y_se"]
            name = rf"$\Delta h^{index[1] + 1}$" if quantity == "dh" else r"$\Delta f$"
            line = ax.errorbar(check.widths, mean, yerr=2 * se, marker="o", ms=3, capsize=2,
                               label=f"{name}: slope {fits[label].estimate:.2f}")
            slope = fits[label].prediction
            ax.plot(check.widths, mean[-1] * (check.widths / check.widths[-1]) ** slope, "--", lw=1,
                    color=line[0].get_color())
        ax.set(xscale="log", yscale="log", xlabel="width n", title=f"{p.name}, step {t + 1}")
        ax.set_ylabel("mean |coordinate| (dashed: predicted slope)" if panel == 0 else "")
        ax.legend(fontsize=7)


@claim("parameterizations.mup_coordinates",
       "Under $\\mu$P (SGD) every layer's update $\\Delta h^l$ and the output's update $\\Delta f$ stay $\\Theta(1)$ as "
       "the width grows: their log-log slopes are 0 at every step.", SOURCE, lambda: _prediction(SETUPS["mup"][0]))
def _mup(seed, size):
    return _slopes("mup", _series(SETUPS["mup"][0], range(1, STEPS + 1)), seed, size)


@claim("parameterizations.mup_adam_coordinates",
       "Under $\\mu$P for Adam (per-layer learning rates $\\eta$, $\\eta/n$, $\\eta/n$) every layer's update and "
       "$\\Delta f$ stay $\\Theta(1)$: their log-log slopes are 0.", SOURCE, lambda: _prediction(SETUPS["mup_adam"][0]))
def _mup_adam(seed, size):
    return _slopes("mup_adam", _series(SETUPS["mup_adam"][0], range(1, STEPS + 1)), seed, size)


@claim("parameterizations.ntk_hidden_updates",
       "In the NTK parameterization the hidden coordinates move like $n^{-1/2}$ while $\\Delta f = \\Theta(1)$.",
       SOURCE, lambda: _prediction(SETUPS["ntk"][0]))
def _ntk(seed, size):
    return _slopes("ntk", _series(SETUPS["ntk"][0], range(1, STEPS + 1)), seed, size)


@claim("parameterizations.sp_kernel_regime",
       "The standard parameterization with learning rate $\\eta/n$ ($c = 1$) is in the kernel regime: $\\Delta f = "
       "\\Theta(1)$ while $\\Delta h^1 \\sim n^{-3/2}$ and $\\Delta h^2 \\sim n^{-1/2}$.", SOURCE,
       lambda: _prediction(SETUPS["sp_c1"][0]))
def _sp_kernel(seed, size):
    return _slopes("sp_c1", _series(SETUPS["sp_c1"][0], range(1, STEPS + 1)), seed, size)


@claim("parameterizations.sp_blows_up",
       "The standard parameterization with a width-independent learning rate ($c = 0$) is unstable: after one step the "
       "hidden update grows like $n^{1/2}$ (the input layer's shrinks like $n^{-1/2}$).", SOURCE,
       lambda: _prediction(SETUPS["sp_c0"][0], steps=[1]))
def _sp_unstable(seed, size):
    return _slopes("sp_c0", _series(SETUPS["sp_c0"][0], [1], output=False), seed, size)


@claim("parameterizations.mf_feature_learning",
       "The mean-field parameterization of a one-hidden-layer network learns features: $\\Delta h^1$ and $\\Delta f$ "
       "are $\\Theta(1)$ as the width grows.", SOURCE, lambda: _prediction(SETUPS["mf"][0]))
def _mf(seed, size):
    return _slopes("mf", _series(SETUPS["mf"][0], range(1, STEPS + 1)), seed, size)


#: Relative float64 tolerance of the symmetry: rounding differs between the two scalings of the same numbers.
SYMMETRY_TOLERANCE = 1e-12


@claim("parameterizations.symmetry",
       "Parameterizations related by the abc symmetry $(a + \\theta, b - \\theta, c - 2\\theta)$ (Adam: $c - \\theta$) "
       "train the same function: $f_t$ agrees to float64 rounding on the same seed.", SOURCE,
       lambda: sp.Eq(sp.Symbol(r"f_t^{(a+\theta,\, b-\theta,\, c-2\theta)} - f_t^{(a, b, c)}"), 0, evaluate=False))
def _symmetry(seed, size):
    theta = sp.Rational(1, 3)
    sgd, adam = MUP(DEPTH), MUP_ADAM(DEPTH)
    setups = {"sgd": (sgd, 0.5), "sgd_shifted": (sgd.shift(theta), 0.5),
              "adam": (adam, 0.05), "adam_shifted": (adam.shift([-theta, theta, 2 * theta]), 0.05),
              "sgd_wrong": (abc([x + theta for x in sgd.a], [x - theta for x in sgd.b], [x - theta for x in sgd.c]),
                            0.5)}
    X, Y = _batch()
    widths = sized(size, [96, 300], [96, 300, 1000], [96, 300, 1000, 3000])
    runs = coordinate_check(setups, X, Y, widths, steps=3, networks=2,
                            seed=seed_for(seed, "parameterizations.symmetry"))

    def gap(a, b):
        return float(np.max(np.abs(runs[a].f - runs[b].f)) / np.max(np.abs(runs[a].f)))

    gaps = {"sgd": gap("sgd", "sgd_shifted"), "adam": gap("adam", "adam_shifted")}
    wrong = gap("sgd", "sgd_wrong")
    return compare(0.0, max(gaps.values()), 0.0, bias=SYMMETRY_TOLERANCE, rivals={"a wrong shift (c - theta)": wrong},
                   exempt="an identity up to rounding: its prediction 0 is unchanged by scaling; the wrong shift is its "
                          "rival", data={**gaps, "wrong_shift": wrong, "widths": widths})
