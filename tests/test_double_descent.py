"""Double descent: least-squares risks against exact identities, limits and direct simulation; the Mei-Montanari
random-features risk against its own fixed-point equations and against simulated random-features regression."""

import numpy as np
import pytest
import scipy.integrate
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import theory.claims.double_descent  # noqa: F401  (registers the claims)
from theory import claims
from theory import double_descent as dd
from theory.derive import render, topics
from theory.numeric import lambdify
from theory.symbols import n


def _marchenko_pastur_stieltjes(gamma, lam):
    """∫ dμ(s)/(s + λ) by quadrature of the Marchenko-Pastur density (plus its atom at 0 when γ > 1)."""
    lo, hi = (1 - np.sqrt(gamma)) ** 2, (1 + np.sqrt(gamma)) ** 2
    density = lambda s: np.sqrt(max((hi - s) * (s - lo), 0.0)) / (2 * np.pi * gamma * s)  # noqa: E731
    value = scipy.integrate.quad(lambda s: density(s) / (s + lam), lo, hi, limit=200)[0]
    return value + (max(1 - 1 / gamma, 0.0) / lam)


@pytest.mark.parametrize("gamma, lam", [(0.3, 0.5), (1.0, 0.2), (2.5, 1.0), (4.0, 0.05)])
def test_stieltjes_transform_against_the_density(gamma, lam):
    m = lambdify((dd.gamma, dd._z), dd.stieltjes_transform())(gamma, -lam)
    assert float(m) == pytest.approx(_marchenko_pastur_stieltjes(gamma, lam), rel=1e-8)


def test_ridge_tends_to_ridgeless_and_finite_n_to_the_limit():
    ridge = dd.ridge_formula()
    for g in (sp.Rational(1, 3), sp.Integer(3)):
        limit = sp.limit(ridge.xreplace({dd.gamma: g}), dd.lam, 0, "+")
        assert sp.simplify(limit - dd.ridgeless_formula().xreplace({dd.gamma: g})) == 0
    finite = dd.ridgeless_formula(finite=True)
    for g in (sp.Rational(1, 2), sp.Integer(2)):
        branch = finite.args[0 if g < 1 else 1][0]  # p < n - 1, p > n + 1
        limit = sp.limit(branch.xreplace({dd.p: g * n}), n, sp.oo)
        assert sp.simplify(limit - dd.ridgeless_formula().xreplace({dd.gamma: g})) == 0


def test_optimal_ridge_is_a_stationary_point_and_a_minimum():
    derivative = sp.diff(dd.ridge_formula(), dd.lam).xreplace({dd.lam: dd.optimal_ridge()})
    assert sp.simplify(derivative) == 0
    grid = np.geomspace(1e-3, 1e2, 400)
    for g in (0.5, 1.0, 3.0):
        best = dd.ridgeless_risk(g, 1.0, 0.3, ridge="optimal")
        assert best <= np.min(dd.ridgeless_risk(g, 1.0, 0.3, ridge=grid)) + 1e-12


@settings(max_examples=30)
@given(gamma=st.floats(0.05, 20.0), r2=st.floats(0.0, 5.0), sigma2=st.floats(0.0, 5.0))
def test_risks_are_finite_nonnegative_and_ridge_never_beats_the_optimum(gamma, r2, sigma2):
    optimal = dd.ridgeless_risk(gamma, r2, sigma2, ridge="optimal")
    assert np.isfinite(optimal) and optimal >= -1e-12
    assert dd.ridgeless_risk(gamma, r2, sigma2, ridge=0.7) >= optimal - 1e-10
    if abs(gamma - 1) > 1e-6:
        assert dd.ridgeless_risk(gamma, r2, sigma2) >= optimal - 1e-10


def test_degenerate_but_legal_inputs():
    assert dd.ridgeless_risk(1.0, 1.0, 0.0) == 0.0  # no noise: no peak
    assert np.isinf(dd.ridgeless_risk(1.0, 1.0, 0.1))
    assert dd.ridgeless_risk(2.0, 0.0, 0.5, ridge="optimal") == 0.0  # β = 0: λ* = ∞ predicts 0
    assert dd.ridgeless_risk(0.99999, 2.5, 0.0, ridge="optimal") == 0.0  # no cancellation below γ = 1 at σ² = 0
    assert dd.least_squares_risk(10, 10, 1.0, 0.0) == 0.0
    assert dd.least_squares_risk(10, 11, 1.0, 0.0) == pytest.approx(1 / 11)
    np.testing.assert_array_equal(dd.ridgeless_risk([0.5, 2.0], 1.0, 0.0, ridge=[0.0, 0.0]), [0.0, 0.5])


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(gamma=0.0, r2=1.0, sigma2=1.0), ValueError, "gamma"),
    (dict(gamma=1.5, r2=-1.0, sigma2=1.0), ValueError, "r2"),
    (dict(gamma=1.5, r2=1.0, sigma2=np.nan), ValueError, "sigma2"),
    (dict(gamma=1.5, r2=1.0, sigma2=1.0, ridge="best"), ValueError, "ridge"),
    (dict(gamma=1.5, r2=1.0, sigma2=1.0, ridge=-0.1), ValueError, "ridge"),
    (dict(gamma="x", r2=1.0, sigma2=1.0), TypeError, "gamma"),
])
def test_bad_input_is_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        dd.ridgeless_risk(**kwargs)


@pytest.mark.parametrize("n_, p_", [(40, 15), (30, 60)])
def test_finite_n_formula_against_direct_simulation(n_, p_):
    """Explicit β, noise and min-norm fit, risk |β̂ - β|² (5 SE)."""
    rng = np.random.default_rng(0)
    risks = []
    for _ in range(4000):
        beta = rng.standard_normal(p_)
        beta *= np.sqrt(1.3) / np.linalg.norm(beta)
        X = rng.standard_normal((n_, p_))
        fit = np.linalg.lstsq(X, X @ beta + np.sqrt(0.4) * rng.standard_normal(n_), rcond=None)[0]
        risks.append(np.sum((fit - beta) ** 2))
    exact = dd.least_squares_risk(n_, p_, 1.3, 0.4)
    assert abs(np.mean(risks) - exact) <= 5 * np.std(risks) / np.sqrt(len(risks))


@pytest.mark.slow
def test_ridge_formula_against_simulation_at_large_n():
    """n = 300, explicit ridge fits; tolerance 5 SE + 2/n of the risk (the O(1/n) finite-size correction)."""
    rng = np.random.default_rng(1)
    n_, p_, lam_ = 300, 450, 0.4
    risks = []
    for _ in range(150):
        beta = rng.standard_normal(p_)
        beta /= np.linalg.norm(beta)
        X = rng.standard_normal((n_, p_))
        y = X @ beta + 0.5 * rng.standard_normal(n_)
        fit = np.linalg.solve(X.T @ X / n_ + lam_ * np.eye(p_), X.T @ y / n_)
        risks.append(np.sum((fit - beta) ** 2))
    theory = dd.ridgeless_risk(p_ / n_, 1.0, 0.25, ridge=lam_)
    assert abs(np.mean(risks) - theory) <= 5 * np.std(risks) / np.sqrt(len(risks)) + 2 / n_ * theory


# ---------------------------------------------------------------------------------------------------------------
# Random features
# ---------------------------------------------------------------------------------------------------------------


def test_relu_coefficients():
    mu0, mu1, mus2 = dd.random_features_coefficients("relu")
    assert sp.simplify(mu0 - 1 / sp.sqrt(2 * sp.pi)) == 0 and mu1 == sp.Rational(1, 2)
    assert sp.simplify(mus2 - (sp.Rational(1, 4) - 1 / (2 * sp.pi))) == 0


def _fixed_point_residual(p1, p2, z, lam_bar, chi):
    """Solve for (ν₁, ν₂) at ξ = i s given χ, and return the residual of the complex fixed-point equations."""
    s = np.sqrt(p1 * p2 * lam_bar)
    h = -chi * (1 + z**2 / (1 - z**2 * chi))  # h(x) at x = -χ
    nu1, nu2 = 1j * (p1 - h) / s, 1j * (p2 - h) / s
    common = 1 - z**2 * nu1 * nu2
    return (abs(nu1 - p1 / (-1j * s - nu2 - z**2 * nu2 / common)),
            abs(nu2 - p2 / (-1j * s - nu1 - z**2 * nu1 / common)), abs(nu1 * nu2 - chi))


@pytest.mark.parametrize("p1, p2, lam_bar", [(0.5, 2.0, 0.1), (3.0, 2.0, 1e-3), (2.0, 2.0, 0.5)])
def test_numeric_chi_solves_the_complex_fixed_point_equations(p1, p2, lam_bar):
    z = 0.9
    x = dd._solve_chi(np.array(p1), np.array(p2), z, np.array(np.sqrt(p1 * p2 * lam_bar)))
    assert max(_fixed_point_residual(p1, p2, z, lam_bar, -float(x))) < 1e-9


def test_small_ridge_tends_to_the_closed_form_ridgeless_risk():
    psis = np.array([0.4, 1.3, 3.0, 8.0])
    ridgeless = dd.random_features_risk(psis, 2.0, tau2=0.3)
    small = dd.random_features_risk(psis, 2.0, tau2=0.3, ridge=1e-10)
    np.testing.assert_allclose(small.risk, ridgeless.risk, rtol=1e-4)
    chi = dd.random_features_chi()
    for psi in (0.5, 3.0):  # ζ²χ² + (ψζ² - ζ² - 1)χ - ψ = 0 at ψ = min(ψ₁, ψ₂)
        value = chi.xreplace({dd.psi1: psi, dd.psi2: 2 * psi + 1, dd.zeta: sp.Rational(3, 4)})
        residual = dd.zeta**2 * value**2 + (psi * dd.zeta**2 - dd.zeta**2 - 1) * value - psi
        assert abs(float(residual.xreplace({dd.zeta: sp.Rational(3, 4)}))) < 1e-12


def test_random_features_risk_shape_and_peak():
    psis = np.array([0.5, 1.0, 1.9, 2.1, 4.0, 50.0])
    result = dd.random_features_risk(psis, 2.0, tau2=0.25)
    assert result.risk.shape == psis.shape
    np.testing.assert_allclose(result.risk, result.bias + 0.25 * result.variance, rtol=1e-12)
    assert result.risk[2] > result.risk[1] and result.risk[3] > result.risk[4]  # the peak at ψ₁ = ψ₂
    assert np.isinf(dd.random_features_risk(2.0, 2.0, tau2=0.25).risk)


def test_random_features_errors():
    with pytest.raises(ValueError, match="nonlinear"):
        dd.random_features_risk(1.0, 2.0, activation="identity")
    with pytest.raises(ValueError, match="psi1"):
        dd.random_features_risk(0.0, 2.0)
    with pytest.raises(ValueError, match="tau2"):
        dd.random_features_risk(1.0, 2.0, tau2=-1.0)


def _rf_simulation(rng, dim, p1, p2, tau2, lam, reps):
    risks = []
    for _ in range(reps):
        def sphere(count):
            x = rng.standard_normal((count, dim))
            return x * np.sqrt(dim) / np.linalg.norm(x, axis=1, keepdims=True)

        x, theta, test = sphere(int(p2 * dim)), sphere(int(p1 * dim)), sphere(400)
        beta = rng.standard_normal(dim)
        beta /= np.linalg.norm(beta)
        y = x @ beta + np.sqrt(tau2) * rng.standard_normal(x.shape[0])
        features = np.maximum(x @ theta.T / np.sqrt(dim), 0)
        n_, N_ = features.shape
        if lam > 0:  # (1/n)|y - Za|² + (Nλ/d)|a|²
            a = np.linalg.solve(features.T @ features / n_ + N_ * lam / dim * np.eye(N_), features.T @ y / n_)
        else:
            a = np.linalg.lstsq(features, y, rcond=None)[0]
        risks.append(np.mean((test @ beta - np.maximum(test @ theta.T / np.sqrt(dim), 0) @ a) ** 2))
    return np.mean(risks), np.std(risks) / np.sqrt(reps)


@pytest.mark.slow
@pytest.mark.parametrize("p1, lam", [(1.0, 0.0), (4.0, 0.0), (1.5, 0.05), (4.0, 0.2)])
def test_random_features_risk_against_simulation(p1, lam):
    """d = 100 (the claim uses d = 50 with a 5% bias; here 5 SE + 5%), ridge in Mei-Montanari's normalization."""
    mean, se = _rf_simulation(np.random.default_rng(2), 100, p1, 2.0, 0.25, lam, 40)
    theory = dd.random_features_risk(p1, 2.0, tau2=0.25, ridge=lam).risk
    assert abs(mean - theory) <= 5 * se + 0.05 * theory


# ---------------------------------------------------------------------------------------------------------------
# Claims and derive topics
# ---------------------------------------------------------------------------------------------------------------


def test_claims_are_registered():
    ids = [c.id for c in claims.select(["double_descent"])]
    assert ids == sorted(["double_descent.finite_n", "double_descent.hmrt", "double_descent.optimal_ridge",
                          "double_descent.samplewise", "double_descent.random_features"])
    for c in claims.select(["double_descent"]):
        assert c.statement.endswith(".") and c.latex()


@pytest.mark.slow
@pytest.mark.parametrize("claim_id", ["double_descent.finite_n", "double_descent.samplewise",
                                      "double_descent.random_features"])
def test_claims_hold_at_quick_size(claim_id):
    (_, result, _), = claims.verify([claim_id], size="quick")
    assert result.passed, result.criterion


@pytest.mark.parametrize("name, options", [("ridgeless", dict(finite=False, ridge=False)),
                                           ("ridgeless", dict(finite=True, ridge=False)),
                                           ("ridgeless", dict(finite=False, ridge=True)),
                                           ("random_features", dict(ridgeless=True)),
                                           ("random_features", dict(ridgeless=False))])
def test_derive_topics_render(name, options):
    result = topics()[name].derive(**options)
    assert render(result) and "\\" in render(result, latex=True)


def test_random_features_exact_limits_agree_and_catch_a_typo(monkeypatch):
    """The claim's exact check: the Mei-Montanari risk at psi = 1e7 equals the independent ridge-regression and
    population-least-squares limits within its O(1/psi) remainder; with p2 written p1 in E1 it does not."""
    from theory.claims.double_descent import _rf_limits

    limit, value, remainder = _rf_limits(0.25)
    assert np.all(np.abs(value - limit) <= remainder) and np.all(remainder < 1e-4 * limit)
    right = dd.random_features_formula()
    c, z2, p1, p2 = dd.chi, dd.zeta**2, dd.psi1, dd.psi2
    e1 = p2 * c**3 * z2**2 - p2 * c**2 * z2 + p1 * p2 * c * z2 - p1 * p2  # E1 as printed by Mei & Montanari
    bias = (e1 + (p2 - p1) * c**2 * z2) / sp.simplify(e1 / right[1])  # the typo p1 c² ζ² for p2 c² ζ² in E1
    typo = (dd.F1_2 * bias + (dd.tau2 + dd.Fstar2) * right[2] + dd.Fstar2, bias, right[2])
    monkeypatch.setattr(dd, "random_features_formula", lambda: typo)
    limit, value, remainder = _rf_limits(0.25)
    assert np.max(np.abs(value - limit) / remainder) > 1e3
