"""Gaussian expectations: every closed form against an independent 2-D quadrature, the fallback against mpmath."""

import mpmath
import numpy as np
import pytest
import scipy.special as sc
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles import gaussian_expectation_quadrature
from strategies import covariances
from theory import Activation, activation, dual_activation, gaussian_expectation, hermite_coefficients
from theory.gaussian import Angle, GaussianExpectation
from theory.numeric import lambdify
from theory.symbols import q11, q12, q22, rho, z


def _h(x):
    return np.where(x > 0, 1.0, np.where(x < 0, 0.0, 0.5))


def _expit_prime(x):
    return sc.expit(x) * sc.expit(-x)


#: Independent NumPy versions of the registered activations and their derivatives (None: a Dirac delta).
NUMPY = {
    "relu": (lambda x: np.maximum(x, 0), _h),
    "leaky_relu(1/10)": (lambda x: np.where(x > 0, x, x / 10), lambda x: np.where(x > 0, 1.0, 0.1)),
    "abs": (np.abs, np.sign),
    "step": (_h, None),
    "sign": (np.sign, None),
    "identity": (lambda x: x, np.ones_like),
    "erf": (sc.erf, lambda x: 2 / np.sqrt(np.pi) * np.exp(-x**2)),
    "gelu": (lambda x: x * sc.ndtr(x), lambda x: sc.ndtr(x) + x * np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)),
    "sin": (np.sin, np.cos),
    "cos": (np.cos, lambda x: -np.sin(x)),
    "monomial(3)": (lambda x: x**3, lambda x: 3 * x**2),
    "polynomial(1, -1/2, 0, 1/4)": (lambda x: 1 - x / 2 + x**3 / 4, lambda x: -0.5 + 0.75 * x**2),
    "tanh": (np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    "sigmoid": (sc.expit, _expit_prime),
    "softplus": (lambda x: np.logaddexp(0, x), sc.expit),
    "swish": (lambda x: x * sc.expit(x), lambda x: sc.expit(x) + x * _expit_prime(x)),
}
CLOSED = ["relu", "leaky_relu(1/10)", "abs", "step", "sign", "identity", "erf", "gelu", "sin", "cos", "monomial(3)",
          "polynomial(1, -1/2, 0, 1/4)"]
FALLBACK = ["tanh", "sigmoid", "softplus", "swish"]
CROSS = [("relu", "step"), ("relu", "erf"), ("sin", "cos"), ("identity", "relu"), ("erf", "gelu"), ("abs", "sign"),
         ("monomial(3)", "erf")]


def _pairs():
    """(label, φ expr, ψ expr, φ numpy, ψ numpy) for every closed form the package must derive."""
    out = []
    for name in CLOSED:
        act, (f, df) = activation(name), NUMPY[name]
        out.append((f"{name}*{name}", act.expr, act.expr, f, f))
        if df is not None:
            out.append((f"{name}'*{name}'", act.derivative, act.derivative, df, df))
    for a, b in CROSS:
        out.append((f"{a}*{b}", activation(a).expr, activation(b).expr, NUMPY[a][0], NUMPY[b][0]))
    return out


PAIRS = _pairs()


def _scale(f, g, a, b):
    """Cauchy-Schwarz bound √(E[φ(u)²] E[ψ(v)²]): the natural size of E[φ(u)ψ(v)]."""
    return np.sqrt(gaussian_expectation_quadrature(lambda x: f(x) ** 2, lambda x: 1.0 + 0 * x, a, 0, b)
                   * gaussian_expectation_quadrature(lambda x: 1.0 + 0 * x, lambda x: g(x) ** 2, a, 0, b))


def test_registered_activations_evaluate_like_independent_numpy():
    x = np.linspace(-3, 3, 61)
    x = x[x != 0]  # kinks
    for name, (f, df) in NUMPY.items():
        phi, dphi = activation(name).numpy
        np.testing.assert_allclose(phi(x), f(x), rtol=1e-13, atol=1e-15, err_msg=name)
        if df is not None:
            np.testing.assert_allclose(np.broadcast_to(dphi(x), x.shape), df(x), rtol=1e-13, atol=1e-15,
                                       err_msg=name)


@pytest.mark.parametrize("label, phi, psi", [p[:3] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_closed_forms_are_closed(label, phi, psi):
    expr = gaussian_expectation(phi, psi)
    assert not expr.atoms(GaussianExpectation), f"{label} fell back to quadrature: {expr}"
    assert expr.free_symbols <= {q11, q12, q22}


@pytest.mark.parametrize("label, phi, psi, f, g", PAIRS, ids=[p[0] for p in PAIRS])
@settings(max_examples=25, deadline=None)
@given(q=covariances())
def test_closed_forms_match_quadrature(label, phi, psi, f, g, q):
    a, c, b = q
    value = float(lambdify((q11, q12, q22), gaussian_expectation(phi, psi))(a, c, b))
    reference = gaussian_expectation_quadrature(f, g, a, c, b)
    assert abs(value - reference) <= 1e-10 * max(_scale(f, g, a, b), 1e-300), (label, q, value, reference)


@pytest.mark.parametrize("name", ["relu", "step", "sign", "abs", "erf", "gelu", "leaky_relu(1/10)", "identity"])
def test_zero_variance_gives_finite_values_with_conventions(name):
    """With a zero-variance pre-activation u = 0: H(0) = 1/2, sign(0) = 0 (SymPy's conventions)."""
    act = activation(name)
    f = lambdify((q11, q12, q22), gaussian_expectation(act, act))
    g = NUMPY[name][0]

    def mean(var):  # E[φ(u)], u ~ N(0, var); u = 0 when var = 0
        return g(0.0) if var == 0 else gaussian_expectation_quadrature(g, lambda x: 1 + 0 * x, var, 0.0, 1.0)

    for a, b in [(0.0, 0.0), (0.0, 1.7), (2.0, 0.0)]:
        value = float(f(a, 0.0, b))  # q12 = 0 when a variance is 0: u and v are independent
        assert np.isfinite(value)
        assert value == pytest.approx(float(mean(a) * mean(b)), abs=1e-12)


@pytest.mark.parametrize("name", FALLBACK)
def test_fallback_is_an_unevaluated_expectation_with_price_derivatives(name):
    act = activation(name)
    expr = gaussian_expectation(act, act)
    assert isinstance(expr, GaussianExpectation)
    assert sp.diff(expr, q12) == gaussian_expectation(act.derivative, act.derivative)
    assert r"\left\langle" in sp.latex(expr)


def _mpmath_reference(f, a, c, b):
    """E[f(u) f(v)] by mpmath: 1-D at ρ = 1, otherwise nested 2-D (slow: ~10 s)."""
    mpmath.mp.dps = 20
    if a == b == c:
        return mpmath.quad(lambda x: f(mpmath.sqrt(a) * x) ** 2 * mpmath.npdf(x), [-mpmath.inf, 0, mpmath.inf])
    r = c / np.sqrt(a * b)
    rp = np.sqrt(1 - r * r)
    return mpmath.quad(lambda x, y: f(mpmath.sqrt(a) * x) * f(mpmath.sqrt(b) * (r * x + rp * y)) * mpmath.npdf(x)
                       * mpmath.npdf(y), [-mpmath.inf, 0, mpmath.inf], [-mpmath.inf, 0, mpmath.inf], maxdegree=5)


@pytest.mark.parametrize("name", FALLBACK)
@pytest.mark.parametrize("q", [0.05, 1.0, 4.0, 30.0, 300.0, 1000.0])
def test_fallback_quadrature_matches_mpmath_on_the_diagonal(name, q):
    """The documented accuracy, 1e-12 relative to an mpmath reference, at the kernel diagonal."""
    act = activation(name)
    f = lambdify((q11, q12, q22), gaussian_expectation(act, act))
    reference = _mpmath_reference(sp.lambdify(z, act.expr, "mpmath"), q, q, q)
    assert float(f(q, q, q)) == pytest.approx(float(reference), rel=1e-12)


@pytest.mark.slow
def test_fallback_quadrature_matches_mpmath_off_the_diagonal():
    """One correlated covariance in full mpmath 2-D (it also validates the test oracle used elsewhere)."""
    a, c, b = 2.0, -1.9, 2.5
    f = lambdify((q11, q12, q22), gaussian_expectation("tanh", "tanh"))
    reference = float(_mpmath_reference(mpmath.tanh, a, c, b))
    assert float(f(a, c, b)) == pytest.approx(reference, rel=1e-10)
    assert gaussian_expectation_quadrature(np.tanh, np.tanh, a, c, b) == pytest.approx(reference, rel=1e-12)


@pytest.mark.parametrize("name", FALLBACK)
@settings(max_examples=15, deadline=None)
@given(q=covariances(hi=30.0))
def test_fallback_quadrature_matches_independent_quadrature(name, q):
    a, c, b = q
    act = activation(name)
    value = float(lambdify((q11, q12, q22), gaussian_expectation(act, act))(a, c, b))
    f = NUMPY[name][0]
    reference = gaussian_expectation_quadrature(f, f, a, c, b)
    assert abs(value - reference) <= 1e-9 * _scale(f, f, a, b)


@pytest.mark.parametrize("name", ["relu", "erf", "gelu", "abs", "sin"])
def test_price_theorem_links_the_nngp_and_derivative_maps(name):
    """∂/∂q12 E[φ(u)φ(v)] = E[φ'(u)φ'(v)]: two independently derived closed forms must agree."""
    act = activation(name)
    args = (q11, q12, q22)
    lhs = lambdify(args, sp.diff(gaussian_expectation(act, act), q12))
    rhs = lambdify(args, gaussian_expectation(act.derivative, act.derivative))
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.2, 3, 20), rng.uniform(0.2, 3, 20)
    c = rng.uniform(-0.95, 0.95, 20) * np.sqrt(a * b)
    np.testing.assert_allclose(lhs(a, c, b), rhs(a, c, b), rtol=1e-12, atol=1e-14)


def test_user_expression_gets_a_closed_form():
    bump = Activation(sp.exp(-z**2 / 2))
    expr = gaussian_expectation(bump, bump)
    assert not expr.atoms(GaussianExpectation)
    # E[exp(-u²/2 - v²/2)] = det(I + Q)^(-1/2)
    assert sp.simplify(expr - 1 / sp.sqrt((1 + q11) * (1 + q22) - q12**2)) == 0


def test_polynomial_moments_are_wick():
    assert gaussian_expectation(z**2, z**2) == q11 * q22 + 2 * q12**2
    assert sp.expand(gaussian_expectation(z**3, z)) == 3 * q11 * q12
    assert gaussian_expectation(z, 1) == 0


def test_angle_simplifies_and_differentiates():
    assert Angle(q11, q11, q11) == 0
    assert Angle(q11, -q11, q11) == sp.pi
    assert Angle(q11, 0, q22) == sp.pi / 2
    theta = sp.acos(q12 / sp.sqrt(q11 * q22))
    point = {q11: 1.3, q12: 0.4, q22: 0.8}
    for s in (q11, q12, q22):
        assert float(sp.diff(Angle(q11, q12, q22), s).subs(point)) == pytest.approx(float(sp.diff(theta, s).subs(point)))


def test_angle_is_exact_at_identical_inputs_and_finite_at_zero():
    f = lambdify((q11, q12, q22), Angle(q11, q12, q22))
    assert f(2.0, 2.0, 2.0) == 0.0
    assert f(2.0, -2.0, 2.0) == pytest.approx(np.pi, abs=1e-15)
    assert f(0.0, 0.0, 0.0) == pytest.approx(np.pi / 2)


# ---------------------------------------------------------------------------------------------------------------
# The Hermite view
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("coeffs", [(0, 1), (1, 0, 1), (0, -1, 0, 2), (1, 2, 3, 4, 5)])
def test_dual_activation_is_exact_for_polynomials(coeffs):
    phi = sum(sp.Integer(c) * z**i for i, c in enumerate(coeffs))
    exact = gaussian_expectation(phi, phi, 1, rho, 1)
    assert sp.expand(dual_activation(phi, len(coeffs) - 1) - exact) == 0


def test_hermite_coefficients_of_relu_match_quadrature():
    coeffs = hermite_coefficients("relu", 6)
    for k, a_k in enumerate(coeffs):
        reference = gaussian_expectation_quadrature(lambda x: np.maximum(x, 0) * sc.eval_hermitenorm(k, x),
                                                    lambda x: 1 + 0 * x, 1.0, 0.0, 1.0) / np.sqrt(
            float(sp.factorial(k)))
        assert float(a_k) == pytest.approx(reference, abs=1e-13)


def test_truncated_dual_relu_converges_to_the_arc_cosine_kernel():
    series = dual_activation("relu", 20)
    exact = gaussian_expectation("relu", "relu", 1, rho, 1)
    for r in (-0.5, 0.0, 0.6):
        assert float(series.subs(rho, r)) == pytest.approx(float(exact.subs(rho, r)), abs=1e-5)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="registered names"):
        gaussian_expectation(activation("nope"), "relu")
    with pytest.raises(TypeError, match="phi"):
        gaussian_expectation(object(), z)
    with pytest.raises(ValueError, match="k_max"):
        hermite_coefficients("relu", -1)


@settings(max_examples=10, deadline=None)
@given(k=st.integers(0, 5))
def test_monomial_activation_rejects_bad_degrees(k):
    assert activation("monomial", k).expr == z**k
    with pytest.raises(ValueError, match="degree"):
        activation("monomial", -k - 1)


def test_powers_of_a_step_reduce_so_relu_moments_are_closed():
    """H(z)^k = H(z) a.e., so E[relu(u)^4] = E[u^4]/2 = 3 q²/2 and E[relu(u)² relu(v)²] are closed forms."""
    relu = activation("relu").expr
    assert gaussian_expectation(relu**4, 1) == 3 * q11**2 / 2
    fourth = gaussian_expectation(relu**2, relu**2)
    assert not fourth.atoms(GaussianExpectation)
    value = float(lambdify((q11, q12, q22), fourth)(1.2, 0.5, 0.8))
    reference = gaussian_expectation_quadrature(lambda x: np.maximum(x, 0) ** 2, lambda x: np.maximum(x, 0) ** 2,
                                                1.2, 0.5, 0.8)
    assert value == pytest.approx(reference, rel=1e-10)
