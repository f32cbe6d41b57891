"""Mehler's series for Gaussian expectations without a closed form: against the trapezoidal rule it replaces, the
independent 2-D oracle, exact Hermite coefficients, and in its shapes, zero variances and fallback."""

from functools import cache

import numpy as np
import pytest
import scipy.special as sc
from scipy.integrate import quad

from oracles import gaussian_expectation_quadrature
from theory import activation
from theory.gaussian import _coefficients, _quadrature, _trapezoid
from theory.numeric import lambdify
from theory.symbols import z

RHOS = np.array([-1.0, -0.999999, -0.5, 0.0, 0.3, 0.99, 0.999999, 1.0])


def _expr(name):
    """A registered activation, or its derivative for a name ending in a prime."""
    act = activation(name.rstrip("'"))
    return act.derivative if name.endswith("'") else act.expr


#: (φ, ψ, a variance below which the Hermite coefficients of both φ(√q x) and ψ(√q x) are resolved: measured
#: 11.4 for tanh, 8.04 for tanh', 47.3 for sigmoid, 78.8 for softplus).
PAIRS = [("tanh", "tanh", 11.0), ("sigmoid", "sigmoid", 45.0), ("softplus", "softplus", 75.0),
         ("tanh", "tanh'", 8.0), ("sigmoid", "softplus", 45.0)]
IDS = [f"{f}*{g}" for f, g, _ in PAIRS]


def _numpy(name):
    return lambdify([z], _expr(name))


@cache
def _second_moment(name, q):
    """E[f(u)²], u ~ N(0, q), f = _numpy(name), by adaptive 1-D quadrature on |x| <= 14 (u = √q x)."""
    f = _numpy(name)
    if q == 0:
        return float(f(np.zeros(1))[0]) ** 2
    return quad(lambda x: float(f(np.array([np.sqrt(q) * x]))[0]) ** 2 * np.exp(-x * x / 2) / np.sqrt(2 * np.pi),
                -14, 14, epsabs=0, epsrel=1e-12, limit=200)[0]


def _cases(q_cap):
    """(a, c, b) over the correlations RHOS at unequal, tiny and capped variances, and with zero variances."""
    variances = [(1e-3, 1e-3), (1e-3, q_cap), (0.5, 3.0), (q_cap, 0.7), (q_cap, q_cap)]
    cases = [(a, r * np.sqrt(a * b), b) for a, b in variances for r in RHOS]
    cases += [(0.0, 0.0, 1.5), (2.0, 0.0, 0.0), (0.0, 0.0, 0.0)]
    return np.array(cases).T


@pytest.mark.parametrize("phi, psi, q_cap", PAIRS, ids=IDS)
def test_series_matches_the_trapezoidal_rule(phi, psi, q_cap):
    """Every pair below the cap goes through the series, within 1e-12 of √(E[φ²]E[ψ²]) of the trapezoidal rule
    (itself within 1e-12 of mpmath, see test_gaussian.py)."""
    f, g = _numpy(phi), _numpy(psi)
    a, c, b = _cases(q_cap)
    assert _coefficients(f, a).resolved.all() and _coefficients(g, b).resolved.all()
    value = _quadrature(_expr(phi), _expr(psi))(a, c, b)
    reference = _trapezoid(f, g)(a, c, b)
    scale = np.sqrt([_second_moment(phi, x) * _second_moment(psi, y) for x, y in zip(a, b, strict=True)])
    error = np.abs(value - reference)
    worst = np.argmax(error - 1e-12 * scale)
    assert np.all(error <= 1e-12 * scale), (a[worst], c[worst], b[worst], error[worst], scale[worst])


@pytest.mark.parametrize("phi, psi, q_cap", PAIRS, ids=IDS)
def test_series_matches_the_independent_oracle(phi, psi, q_cap):
    """At every correlation of RHOS, unequal variances, one of them at the cap: against the tests' own 2-D
    quadrature, which shares no code with the package."""
    f, g = _numpy(phi), _numpy(psi)
    a, b = q_cap, 0.7
    c = RHOS * np.sqrt(a * b)
    value = _quadrature(_expr(phi), _expr(psi))(a, c, b)
    reference = [gaussian_expectation_quadrature(f, g, a, x, b) for x in c]
    scale = np.sqrt(_second_moment(phi, a) * _second_moment(psi, b))
    np.testing.assert_allclose(value, reference, rtol=0, atol=1e-12 * scale)


def test_hermite_coefficients_are_exact_for_cosine():
    """E[cos(√q x) h_k(x)] = Re(i^k) q^(k/2) e^(-q/2) / √(k!), to 2e-15 for all orders the rule returns."""
    q = np.array([0.3, 4.0, 25.0])
    coeffs = _coefficients(np.cos, q)
    assert coeffs.resolved.all()
    k = np.arange(coeffs.n)
    exact = np.real(1j**k) * np.exp(k * np.log(q[:, None]) / 2 - q[:, None] / 2 - sc.gammaln(k + 1) / 2)
    np.testing.assert_allclose(coeffs.values, exact, rtol=0, atol=2e-15)
    zero = _coefficients(np.cos, np.zeros(1)).values[0]
    assert zero[0] == 1.0 and not zero[1:].any()  # q = 0: exactly (cos 0, 0, 0, ...)


def test_zero_variances_give_the_exact_values():
    sigmoid, softplus, tanh = (_expr(name) for name in ("sigmoid", "softplus", "tanh"))
    assert _quadrature(sigmoid, sigmoid)(0.0, 0.0, 0.0) == 0.25
    assert _quadrature(softplus, softplus)(0.0, 0.0, 0.0) == np.log(2.0) ** 2
    assert _quadrature(tanh, tanh)(0.0, 0.3, 2.0) == 0.0  # tanh(0) E[tanh(v)], whatever the (inconsistent) c
    # sigmoid(0) E[sigmoid(v)] = 1/4 by the symmetry sigmoid(v) + sigmoid(-v) = 1
    np.testing.assert_allclose(_quadrature(sigmoid, sigmoid)(0.0, 0.0, [0.5, 3.0, 20.0]), 0.25, rtol=0, atol=4e-16)
    mean = gaussian_expectation_quadrature(lambda x: np.logaddexp(0, x), lambda x: 1 + 0 * x, 2.0, 0.0, 1.0)
    assert _quadrature(sigmoid, softplus)(0.0, 0.0, 2.0) == pytest.approx(0.5 * mean, rel=1e-14)


def test_above_the_cap_the_trapezoidal_rule_keeps_its_accuracy():
    """tanh at variance 30 would need ~4000 terms at ρ = 1: its pairs, and only those, go to the trapezoidal rule."""
    tanh = _expr("tanh")
    a = np.array([[30.0], [1.0]])
    b = np.array([[0.5, 30.0]])
    rho = np.array([[0.99, -1.0], [0.3, 0.999999]])
    assert _coefficients(np.tanh, a.ravel()).resolved.tolist() == [False, True]
    c = rho * np.sqrt(a * b)
    value = _quadrature(tanh, tanh)(a, c, b)
    for i, j in np.ndindex(c.shape):
        reference = gaussian_expectation_quadrature(np.tanh, np.tanh, a[i, 0], c[i, j], b[0, j])
        scale = np.sqrt(_second_moment("tanh", a[i, 0]) * _second_moment("tanh", b[0, j]))
        assert abs(value[i, j] - reference) <= 1e-12 * scale, (i, j)


def test_pairs_near_unit_correlation_get_all_their_terms():
    """A tile with small correlations but for its diagonal (a kernel's diagonal tile) sums the last terms of the
    series on the diagonal only: every entry agrees with its own one-pair evaluation."""
    f = _quadrature(_expr("tanh"), _expr("tanh"))
    rng = np.random.default_rng(1)
    a = np.linspace(0.5, 3.0, 48)[:, None]
    rho = rng.uniform(-0.4, 0.4, (48, 48))
    np.fill_diagonal(rho, 1.0)
    rho[0, 1], rho[2, 3], rho[4, 5] = -1.0, 0.999999, -0.95
    tile = f(a, rho * np.sqrt(a * a.T), a.T)
    checked = [(i, i) for i in range(0, 48, 3)] + [(0, 1), (2, 3), (4, 5), (7, 30), (40, 9)]
    for i, j in checked:
        single = float(f(a[i, 0], rho[i, j] * np.sqrt(a[i, 0] * a[j, 0]), a[j, 0]))
        assert tile[i, j] == pytest.approx(single, rel=1e-14, abs=1e-16), (i, j)


def test_any_broadcastable_shapes():
    f = _quadrature(_expr("tanh"), _expr("tanh"))
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3, (5, 1)), rng.uniform(0.1, 3, (1, 4))
    c = rng.uniform(-1, 1, (5, 4)) * np.sqrt(a * b)
    tile = f(a, c, b)  # a column and a row: coefficients per row and per column
    assert tile.dtype == np.float64 and tile.shape == (5, 4)
    flat = f(*(np.broadcast_to(x, (5, 4)).ravel() for x in (a, c, b)))  # per distinct value
    np.testing.assert_allclose(tile.ravel(), flat, rtol=1e-14, atol=1e-16)
    views = f(np.broadcast_to(a, (5, 4)), c, np.broadcast_to(b, (5, 4)))  # broadcast views are still a tile
    np.testing.assert_array_equal(views, tile)
    assert f(1.0, 0.5, 2.0).shape == () and f(np.array(1.0), np.array(0.5), np.array(2.0)).dtype == np.float64
    assert float(f(1.0, 0.5, 2.0)) == pytest.approx(float(f([1.0], [0.5], [2.0])[0]), rel=1e-14)
    assert f(a[:, :, None], c[:, :, None], b[0]).shape == (5, 4, 4)
    assert f(a[:0], c[:0], b).shape == (0, 4)
    np.testing.assert_array_equal(f(a, c, b), f(b.T, c.T, a.T).T)  # E[φ(u)φ(v)] is symmetric, exactly


def test_non_finite_inputs_give_nan():
    f = _quadrature(_expr("tanh"), _expr("tanh"))
    assert np.isnan(f([np.nan, 1.0], 0.5, 1.0)).tolist() == [True, False]
    assert np.isnan(f(1.0, [np.nan, 0.5], [1.0, 1.0])).tolist() == [True, False]
    assert np.isnan(_quadrature(_expr("tanh"), _expr("tanh'"))(np.nan, 0.0, 1.0))
