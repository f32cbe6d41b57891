r"""Double descent: the test risk of least squares and of random-features regression, as SymPy formulas.

**Linear model** (Hastie, Montanari, Rosset & Tibshirani 2019, "Surprises in high-dimensional ridgeless least
squares interpolation"): x ~ N(0, I_p), y = x·β + ε with |β|² = r² and Var ε = σ², n samples, γ = p/n. The
estimators are the min-norm least-squares fit (ridgeless, β̂ = X⁺y) and ridge, β̂_λ = (XᵀX/n + λI)⁻¹Xᵀy/n; the risk
is the excess test error E_x[(x·(β̂ - β))²] = |β̂ - β|², averaged over the data. Its limit as n, p -> ∞ at fixed γ
is σ²γ/(1 - γ) for γ < 1 and r²(1 - 1/γ) + σ²/(γ - 1) for γ > 1; at finite n the exact Gaussian-design values are
σ²p/(n - p - 1) and r²(1 - n/p) + σ²n/(p - n - 1) (inverse-Wishart means). Ridge follows from the Stieltjes
transform m(z) of the Marchenko-Pastur law, derived here from its self-consistent equation.

**Random features** (Mei & Montanari 2019, "The generalization error of random features regression: precise
asymptotics and the double descent curve"): inputs x_i and weights θ_a uniform on the sphere of radius √d, features
σ(⟨θ_a, x⟩/√d), a = 1..N, ridge objective (1/n) Σ_i (y_i - Σ_a a_a σ(⟨θ_a, x_i⟩/√d))² + (Nλ/d)|a|², target
y = ⟨β₁, x⟩ + f_NL(x) + ε with |β₁|² = F₁², E f_NL² = F_*², Var ε = τ². The activation enters through
μ₀ = E σ(G), μ₁ = E[G σ(G)], μ_*² = E σ(G)² - μ₀² - μ₁² (G ~ N(0, 1)), ζ = μ₁/μ_*, λ̄ = λ/μ_*². As N, n, d -> ∞
with ψ₁ = N/d, ψ₂ = n/d, the excess risk E_x[(f_d(x) - f̂(x))²] tends to F₁² B + (τ² + F_*²) V + F_*², with
B = E₁/E₀ and V = E₂/E₀ polynomials in χ = ν₁ν₂, where (ν₁, ν₂) solve the fixed-point equations at
ξ = i(ψ₁ψ₂λ̄)^{1/2}.
"""

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.optimize
import sympy as sp

from . import _validate
from .activations import activation as _activation
from .derive import Option, topic
from .gaussian import gaussian_expectation, hermite_coefficients
from .numeric import lambdify
from .symbols import n

__all__ = ["gamma", "p", "r2", "sigma2", "lam", "psi1", "psi2", "zeta", "chi",
           "stieltjes_transform", "ridgeless_formula", "ridge_formula", "optimal_ridge", "optimal_ridge_risk",
           "ridgeless_risk",
           "least_squares_risk", "random_features_equations", "random_features_chi", "random_features_formula",
           "random_features_coefficients", "random_features_risk", "RandomFeaturesRisk"]

#: Aspect ratio γ = p/n, number of features p, signal r² = |β|², noise σ², ridge λ.
gamma = sp.Symbol("gamma", positive=True)
p = sp.Symbol("p", positive=True, integer=True)
r2 = sp.Symbol("r^2", nonnegative=True)
sigma2 = sp.Symbol("sigma^2", nonnegative=True)
lam = sp.Symbol("lambda", positive=True)
#: Random features: ψ₁ = N/d, ψ₂ = n/d, ζ = μ₁/μ_*, λ̄ = λ/μ_*², χ = ν₁ν₂, and the target's F₁², F_*², τ².
psi1, psi2, zeta = sp.symbols("psi_1 psi_2 zeta", positive=True)
lam_bar = sp.Symbol("lambdabar", positive=True)
chi = sp.Symbol("chi", negative=True)
F1_2, Fstar2, tau2 = sp.symbols("F_1^2 F_*^2 tau^2", nonnegative=True)
_z = sp.Symbol("z", negative=True)  # the Stieltjes transform's argument, z = -λ < 0
_xi, _nu1, _nu2 = sp.symbols("xi nu_1 nu_2")
_s, _a1, _a2, _x = sp.symbols("s a_1 a_2 x", positive=True)  # ξ = i s, ν_j = i a_j, x = a₁a₂ = -χ
_LS = (gamma, r2, sigma2)
gamma_, r2_, sigma2_ = _LS  # the symbols, under names that the numeric functions' arguments do not shadow
_FINITE = (n, p, r2, sigma2)
_RF = (chi, psi1, psi2, zeta, F1_2, Fstar2, tau2)


# --------------------------------------------------------------------------------------------------------------
# Least squares
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def stieltjes_transform():
    """m(z) = ∫ dμ_MP(s)/(s - z) of the Marchenko-Pastur law of XᵀX/n (ratio γ = p/n), for z < 0.

    Derived from the self-consistent equation m = 1/(1 - γ - z - γ z m): the root that is positive for z < 0.
    """
    m = sp.Symbol("m")
    roots = sp.solve(sp.Eq(m, 1 / (1 - gamma - _z - gamma * _z * m)), m)
    probe = {gamma: sp.Rational(1, 2), _z: -1}
    return next(r for r in roots if r.xreplace(probe).evalf() > 0)


@lru_cache(maxsize=2)
def ridgeless_formula(finite=False):
    """The ridgeless (min-norm) least-squares risk: the HMRT limit in γ, or (``finite=True``) the exact value in n, p.

    Infinite at the interpolation threshold (γ = 1, or |p - n| <= 1) unless σ² = 0, where the bias alone remains.
    """
    at_threshold = sp.Piecewise((0, sp.Eq(sigma2, 0)), (sp.oo, True))
    if finite:
        return sp.Piecewise((sigma2 * p / (n - p - 1), p < n - 1),
                            (r2 * (1 - n / p) + sigma2 * n / (p - n - 1), p > n + 1),
                            (r2 * sp.Max(0, 1 - n / p) + at_threshold, True))
    return sp.Piecewise((sigma2 * gamma / (1 - gamma), gamma < 1),
                        (r2 * (1 - 1 / gamma) + sigma2 / (gamma - 1), gamma > 1),
                        (at_threshold, True))


@lru_cache(maxsize=1)
def ridge_formula():
    """The ridge risk r²λ² m'(-λ) + σ²γ (m(-λ) - λ m'(-λ)) (Dobriban & Wager 2018; HMRT 2019, isotropic case)."""
    m = stieltjes_transform()
    dm = sp.diff(m, _z)
    at = {_z: -lam}
    return sp.simplify(r2 * lam**2 * dm.xreplace(at) + sigma2 * gamma * (m.xreplace(at) - lam * dm.xreplace(at)))


@lru_cache(maxsize=1)
def optimal_ridge():
    """λ* = σ²γ/r²: ridge with this λ is the posterior mean for the prior β ~ N(0, r²/p I) and noise σ².

    (XᵀX + σ²p/r² I)⁻¹Xᵀy = (XᵀX/n + λ*I)⁻¹Xᵀy/n, so it minimizes the Bayes risk; dR/dλ vanishes there.
    """
    return sp.solve(sp.Eq(lam * n, sigma2 * p / r2), lam)[0].xreplace({p: gamma * n})


def _array(value, name, positive=False):
    """A finite float64 array, >= 0 (or > 0)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected real numbers, got {type(value).__name__}") from err
    bad = ~np.isfinite(arr) | (arr <= 0 if positive else arr < 0)
    if bad.any():
        raise ValueError(f"{name}: expected finite numbers {'> 0' if positive else '>= 0'}, got {arr[bad].flat[0]}")
    return arr


@lru_cache(maxsize=1)
def optimal_ridge_risk():
    """R(λ*): the ridge risk at λ* = σ²γ/r², simplified; finite for every γ (no peak), r²(1 - 1/γ)₊ at σ² = 0.

    Simplified with r², σ² positive; the result is continuous at r² = 0 and σ² = 0, where it holds too.
    Written as (A + √Δ)/(2γ) for A >= 0 and, rationalized, (Δ - A²)/(2γ(√Δ - A)) for A < 0, so that it does not
    cancel catastrophically where A + √Δ -> 0 (σ² -> 0 at γ < 1).
    """
    positive = {r2: sp.Symbol("r2", positive=True), sigma2: sp.Symbol("s2", positive=True)}
    risk = sp.simplify(ridge_formula().xreplace({lam: optimal_ridge()}).xreplace(positive))
    risk = risk.xreplace({v: k for k, v in positive.items()})
    root = next(a for a in risk.atoms(sp.Pow) if a.exp == sp.S.Half)  # √Δ
    a = sp.expand(2 * gamma * risk - root)
    assert not a.has(root), risk
    rationalized = sp.factor(sp.expand(root**2 - a**2)) / (2 * gamma * (root - a))
    return sp.Piecewise((rationalized, a < 0), (risk, True))


def ridgeless_risk(gamma, r2, sigma2, ridge=0):
    """The asymptotic risk of least squares at γ = p/n (arrays broadcast): ridgeless, ridge λ, or ``"optimal"`` λ*.

    ``ridge=0`` is the HMRT formula (:func:`ridgeless_formula`), infinite at γ = 1 when σ² > 0; ``ridge > 0`` is
    :func:`ridge_formula`; ``ridge="optimal"`` is :func:`optimal_ridge_risk`, the risk at λ* = σ²γ/r².
    """
    g = _array(gamma, "gamma", positive=True)
    s, n2 = _array(r2, "r2"), _array(sigma2, "sigma2")
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(ridge, str):
            if ridge != "optimal":
                raise ValueError(f"ridge: expected a number >= 0 or 'optimal', got {ridge!r}")
            return lambdify(_LS, optimal_ridge_risk())(g, s, n2)
        lam_ = _array(ridge, "ridge")
        ridgeless = lambdify(_LS, ridgeless_formula())(g, s, n2)
        ridged = lambdify((gamma_, r2_, sigma2_, lam), ridge_formula())(g, s, n2, np.where(lam_ > 0, lam_, 1.0))
    return np.where(lam_ > 0, ridged, ridgeless)


def least_squares_risk(n, p, r2, sigma2):
    """The exact risk E|X⁺y - β|² of min-norm least squares with n Gaussian samples and p features (arrays).

    σ²p/(n - p - 1) for p < n - 1, r²(1 - n/p) + σ²n/(p - n - 1) for p > n + 1 (infinite in between if σ² > 0).
    """
    nn, pp = _array(n, "n", positive=True), _array(p, "p", positive=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lambdify(_FINITE, ridgeless_formula(finite=True))(nn, pp, _array(r2, "r2"), _array(sigma2, "sigma2"))


# --------------------------------------------------------------------------------------------------------------
# Random features (Mei & Montanari 2019)
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def random_features_equations():
    """The fixed-point equations of (ν₁, ν₂) at ξ ∈ C₊ (Mei & Montanari 2019, Definition 1)."""
    common = 1 - zeta**2 * _nu1 * _nu2
    return [sp.Eq(_nu1, psi1 / (-_xi - _nu2 - zeta**2 * _nu2 / common)),
            sp.Eq(_nu2, psi2 / (-_xi - _nu1 - zeta**2 * _nu1 / common))]


@lru_cache(maxsize=1)
def _chi_equation():
    """The scalar equation for x = -χ at ξ = i s, derived from the fixed-point equations.

    With ν_j = i a_j (a_j > 0) the equations are real; clearing denominators and writing a₁a₂ = x makes each linear
    in its a_j: a_j s + h(x) = ψ_j with h(x) = x(1 + ζ²/(1 + ζ²x)). Then x = a₁a₂ gives s²x = (ψ₁ - h)(ψ₂ - h).
    Returns (h, residual s²x - (ψ₁ - h)(ψ₂ - h)).
    """
    eq1 = random_features_equations()[0]
    real = sp.Eq(_a1, sp.simplify(eq1.rhs.xreplace({_xi: sp.I * _s, _nu1: sp.I * _a1, _nu2: sp.I * _a2}) / sp.I))
    cleared = sp.expand(sp.fraction(sp.together(real.lhs - real.rhs))[0]).subs(_a1 * _a2, _x)
    a1 = sp.solve(cleared, _a1)[0]  # (ψ₁ - h(x))/s
    h = sp.simplify(psi1 - _s * a1)
    a2 = a1.xreplace({psi1: psi2})
    return h, sp.simplify(_s**2 * _x - (_s * a1) * (_s * a2))


@lru_cache(maxsize=1)
def random_features_chi():
    """χ = ν₁ν₂ in the ridgeless limit λ -> 0: the negative root of ζ²χ² + (ψζ² - ζ² - 1)χ - ψ = 0, ψ = min(ψ₁, ψ₂).

    Derived from :func:`_chi_equation`: at s -> 0, h(x) = min(ψ₁, ψ₂) (the other a_j diverges like |ψ₁ - ψ₂|/s).
    """
    h, _ = _chi_equation()
    psi = sp.Symbol("psi", positive=True)
    x = next(r for r in sp.solve(sp.Eq(h, psi), _x) if r.xreplace({psi: 1, zeta: 1}).evalf() > 0)
    return -x.xreplace({psi: sp.Min(psi1, psi2)})


@lru_cache(maxsize=1)
def random_features_formula():
    """(risk, B, V): the Mei-Montanari risk F₁²B + (τ² + F_*²)V + F_*² with B = E₁/E₀, V = E₂/E₀ in χ, ζ, ψ₁, ψ₂."""
    c, z2, p1, p2 = chi, zeta**2, psi1, psi2
    e0 = (-c**5 * z2**3 + 3 * c**4 * z2**2 + (p1 * p2 - p2 - p1 + 1) * c**3 * z2**3 - 2 * c**3 * z2**2
          - 3 * c**3 * z2 + (p1 + p2 - 3 * p1 * p2 + 1) * c**2 * z2**2 + 2 * c**2 * z2 + c**2 + 3 * p1 * p2 * c * z2
          - p1 * p2)
    e1 = p2 * c**3 * z2**2 - p2 * c**2 * z2 + p1 * p2 * c * z2 - p1 * p2
    e2 = (c**5 * z2**3 - 3 * c**4 * z2**2 + (p1 - 1) * c**3 * z2**3 + 2 * c**3 * z2**2 + 3 * c**3 * z2
          - (p1 + 1) * c**2 * z2**2 - 2 * c**2 * z2 - c**2)
    b, v = e1 / e0, e2 / e0
    return F1_2 * b + (tau2 + Fstar2) * v + Fstar2, b, v


@lru_cache(maxsize=32)
def random_features_coefficients(activation):
    """(μ₀, μ₁, μ_*²) of an activation: E σ(G), E[G σ(G)], E σ(G)² - μ₀² - μ₁² for G ~ N(0, 1) (SymPy)."""
    act = _activation(activation)
    mu0, mu1 = hermite_coefficients(act, 1)
    return mu0, mu1, sp.simplify(gaussian_expectation(act, act, 1, 1, 1) - mu0**2 - mu1**2)


class RandomFeaturesRisk(NamedTuple):
    """The asymptotic risk = F₁²·bias + (τ² + F_*²)·variance + F_*² and Mei-Montanari's B (bias) and V (variance)."""

    risk: np.ndarray
    bias: np.ndarray
    variance: np.ndarray


def _solve_chi(p1, p2, z, s):
    """-χ at ξ = i s: the root of s²x = (ψ₁ - h(x))(ψ₂ - h(x)) in (0, x₀], x₀ the ridgeless -χ (h(x₀) = min ψ)."""
    _, residual = _chi_equation()
    f = lambdify((_x, psi1, psi2, zeta, _s), residual)
    top = -lambdify((psi1, psi2, zeta), random_features_chi())(p1, p2, z)
    out = np.empty(np.broadcast(p1, p2, s).shape)
    for i, (a, b, c, t) in enumerate(np.broadcast(p1, p2, s, top)):
        out.flat[i] = t if c == 0 else scipy.optimize.brentq(lambda x: float(f(x, a, b, z, c)), 0.0, t, xtol=1e-15,
                                                             rtol=1e-14)
    return out


def random_features_risk(psi1, psi2, activation="relu", F1_2=1.0, Fstar2=0.0, tau2=0.0, ridge=0.0):
    """The Mei-Montanari asymptotic risk of random-features ridge regression at ψ₁ = N/d, ψ₂ = n/d (arrays broadcast).

    Conventions in the module docstring: x, θ_a uniform on the sphere of radius √d, features σ(⟨θ_a, x⟩/√d),
    penalty (Nλ/d)|a|² with ``ridge`` = λ, target with |β₁|² = F₁², E f_NL² = F_*², noise τ². ``ridge=0`` uses the
    closed-form ridgeless χ (:func:`random_features_chi`), infinite at ψ₁ = ψ₂ when τ² + F_*² > 0; ``ridge > 0``
    solves the fixed-point equations numerically. Returns :class:`RandomFeaturesRisk`.
    """
    p1, p2 = _array(psi1, "psi1", positive=True), _array(psi2, "psi2", positive=True)
    f1, fs, t2 = (_validate.variance(v, name) for v, name in ((F1_2, "F1_2"), (Fstar2, "Fstar2"), (tau2, "tau2")))
    lam_ = _array(ridge, "ridge")
    mu0, mu1, mus2 = (float(c.evalf()) for c in random_features_coefficients(activation))
    if mus2 <= 1e-14:
        raise ValueError(f"activation: the random-features risk needs a nonlinear activation (mu_*^2 > 0), got "
                         f"{_activation(activation).name} with mu_*^2 = {mus2:.3g}")
    z = mu1 / np.sqrt(mus2)
    x = _solve_chi(p1, p2, z, np.sqrt(p1 * p2 * lam_ / mus2))
    with np.errstate(divide="ignore", invalid="ignore"):
        risk, bias, variance = (lambdify(_RF, e)(-x, p1, p2, z, f1, fs, t2) for e in random_features_formula())
    threshold = (lam_ == 0) & (p1 == p2)  # E₀ = 0: both B and V diverge at the interpolation threshold
    return RandomFeaturesRisk(np.where(threshold, np.inf if f1 + fs + t2 > 0 else 0.0, risk),
                              np.where(threshold, np.inf, bias), np.where(threshold, np.inf, variance))


# --------------------------------------------------------------------------------------------------------------
# theory derive
# --------------------------------------------------------------------------------------------------------------


@topic("ridgeless", "the risk of min-norm least squares, x ~ N(0, I_p), gamma = p/n (Hastie et al. 2019)",
       Option("finite", False, "the exact finite-n Gaussian formula in n and p", None),
       Option("ridge", False, "the ridge risk R(lambda) and its optimal lambda", None))
def _derive_ridgeless(finite, ridge):
    risk = sp.Symbol("R")
    if ridge:
        return [sp.Eq(sp.Symbol("m(z)"), stieltjes_transform(), evaluate=False),
                sp.Eq(risk, ridge_formula(), evaluate=False),
                sp.Eq(sp.Symbol("lambda^*"), optimal_ridge(), evaluate=False),
                sp.Eq(sp.Symbol("R^*"), optimal_ridge_risk(), evaluate=False)]
    return sp.Eq(risk, ridgeless_formula(finite), evaluate=False)


@topic("random_features", "the Mei-Montanari risk of random-features regression in psi_1 = N/d, psi_2 = n/d",
       Option("ridgeless", False, "the closed-form chi of the ridgeless limit", None))
def _derive_random_features(ridgeless):
    risk, b, v = random_features_formula()
    eqs = [] if ridgeless else list(random_features_equations())
    eqs.append(sp.Eq(chi, random_features_chi() if ridgeless else _nu1 * _nu2, evaluate=False))
    bias, variance = sp.symbols("B V")
    return eqs + [sp.Eq(bias, b, evaluate=False), sp.Eq(variance, v, evaluate=False),
                  sp.Eq(sp.Symbol("R"), F1_2 * bias + (tau2 + Fstar2) * variance + Fstar2, evaluate=False)]
