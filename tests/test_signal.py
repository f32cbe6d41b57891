"""Signal propagation: fixed points against a direct iteration of the maps by adaptive quadrature, critical lines
against independent solutions, the divergence of ξ_c at criticality, bad input, and the CLI."""

import warnings

import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sc
import sympy as sp
from scipy.optimize import brentq

import theory
from theory.cli import main
from theory.symbols import sigma_b2, sigma_w2, z

from oracles import gaussian_expectation_quadrature

_PHI = {"tanh": (np.tanh, lambda x: 1 / np.cosh(x) ** 2),
        "erf": (sc.erf, lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x))}


def _expect(f):
    """E[f(ξ)], ξ ~ N(0, 1), by adaptive quadrature (independent of the package's Gaussian engine)."""
    return si.quad(lambda x: f(x) * np.exp(-x * x / 2) / np.sqrt(2 * np.pi), -14, 14, points=[0.0], limit=200,
                   epsabs=1e-15, epsrel=1e-13)[0]


def _length(act, sw, sb):
    phi = _PHI[act][0]
    return lambda q: sb + sw * _expect(lambda x: phi(np.sqrt(q) * x) ** 2)


def _chi_1(act, sw, q):
    dphi = _PHI[act][1]
    return sw * _expect(lambda x: dphi(np.sqrt(q) * x) ** 2)


def _q_star(act, sw, sb, q=1.0, steps=100):
    """The fixed point by iterating the length map (it contracts: |χ_∥| < 1 in these cases)."""
    length = _length(act, sw, sb)
    for _ in range(steps):
        q = length(q)
    return q


def _correlation_map(act, sw, sb, q):
    phi = _PHI[act][0]
    return lambda c: (sb + sw * gaussian_expectation_quadrature(phi, phi, q, c * q, q)) / q


@pytest.mark.parametrize("act, sw, sb", [("tanh", 1.2, 0.05), ("tanh", 2.5, 0.05), ("tanh", 4.0, 0.3),
                                         ("erf", 1.5, 0.1), ("erf", 3.0, 0.02)])
def test_fixed_points_and_susceptibilities_against_quadrature(act, sw, sb):
    s = theory.signal_propagation(act, sw, sb)
    q = _q_star(act, sw, sb)
    assert s.q_star == pytest.approx(q, rel=1e-10)
    assert s.chi_1 == pytest.approx(_chi_1(act, sw, q), rel=1e-9)
    length, h = _length(act, sw, sb), 1e-4 * q
    chi_par = (length(q + h) - length(q - h)) / (2 * h)
    assert s.chi_parallel == pytest.approx(chi_par, rel=1e-6)
    assert s.xi_q == pytest.approx(-1 / np.log(chi_par), rel=1e-6)
    assert s.phase == ("ordered" if s.chi_1 < 1 else "chaotic")
    if s.phase == "ordered":
        assert s.c_star == 1 and s.chi_c == s.chi_1
    else:  # the defining property of c*: a fixed point of the correlation map, attracting with slope χ_c
        cmap, h = _correlation_map(act, sw, sb, q), 1e-4
        assert cmap(s.c_star) == pytest.approx(s.c_star, abs=1e-10)
        assert s.chi_c == pytest.approx((cmap(s.c_star + h) - cmap(s.c_star - h)) / (2 * h), rel=1e-6)
        assert 0 < s.chi_c < 1 < s.chi_1
    assert s.xi_c == pytest.approx(-1 / np.log(s.chi_c), rel=1e-12)


def test_relu_critical_point_and_closed_form():
    """ReLU: χ₁ = σ_w²/2, so the line is σ_w² = 2 at σ_b² = 0, where every q is a fixed point; below it
    q* = σ_b²/(1 - σ_w²/2) (solved by SymPy); above it the variance diverges."""
    assert theory.order_chaos_line("relu", 0.0) == 2.0
    np.testing.assert_array_equal(theory.order_chaos_line("relu", np.zeros(3)), [2.0, 2.0, 2.0])
    s = theory.signal_propagation("relu", 2.0, 0.0)
    assert s.phase == "critical" and s.xi_c == np.inf and s.c_star == 1 and s.q_star == 1.0
    assert theory.signal_propagation("relu", 2.0, 0.0, q=3.0).q_star == 3.0
    s = theory.signal_propagation("relu", 1.5, 0.1)
    assert s.q_star == pytest.approx(0.4, rel=1e-12) and s.chi_1 == 0.75 and s.phase == "ordered"
    assert sp.simplify(s.q_star_expr - sigma_b2 / (1 - sigma_w2 / 2)) == 0
    with pytest.raises(ValueError, match="no stable fixed point"):
        theory.signal_propagation("relu", 3.0, 0.1)
    with pytest.raises(ValueError, match="scale-invariant"):
        theory.order_chaos_line("relu", 0.1)


def test_erf_critical_line_against_its_closed_form():
    """erf: E[erf(u)²] = (2/π) arcsin(2q/(1 + 2q)) and E[erf'(u)²] = 4/(π√(1 + 4q)) (Williams 1997), written here
    independently: on the line σ_w² = π√(1 + 4q)/4 and σ_b² = q - σ_w² (2/π) arcsin(2q/(1 + 2q))."""
    def bias(q):
        return q - np.sqrt(1 + 4 * q) / 2 * np.arcsin(2 * q / (1 + 2 * q))

    targets = np.array([0.0, 0.01, 0.05, 0.1, 0.3])
    expected = [np.pi / 4] + [np.pi * np.sqrt(1 + 4 * brentq(lambda q: bias(q) - t, 1e-9, 100, xtol=1e-15)) / 4
                              for t in targets[1:]]
    np.testing.assert_allclose(theory.order_chaos_line("erf", targets), expected, rtol=1e-10)


@pytest.mark.parametrize("sb", [0.05, 0.3])
def test_tanh_critical_line_against_a_nested_solve(sb):
    """The critical σ_w² solves χ₁(q*(σ_w²)) = 1, with q* from iterating the length map by adaptive quadrature."""
    def excess(sw):
        return _chi_1("tanh", sw, _q_star("tanh", sw, sb, steps=60)) - 1

    expected = brentq(excess, 1.2, 3.0, xtol=1e-12)
    assert theory.order_chaos_line("tanh", sb) == pytest.approx(expected, rel=1e-8)
    assert theory.order_chaos_line("tanh", 0.0) == 1.0  # K* = 0: σ_w² = 1/φ'(0)²


def test_xi_c_diverges_at_the_critical_line():
    """ξ_c ~ 1/|σ_w² - σ_w,c²| on both sides (χ_c - 1 is linear in the distance), ∞ on the line."""
    sw = theory.order_chaos_line("tanh", 0.05)
    on = theory.signal_propagation("tanh", sw, 0.05)
    assert on.phase == "critical" and on.xi_c == np.inf and on.c_star == 1
    for side in (-1, 1):
        xi = [theory.signal_propagation("tanh", sw * (1 + side * eps), 0.05).xi_c for eps in (1e-2, 1e-3)]
        assert np.all(np.isfinite(xi)) and 8 < xi[1] / xi[0] < 12
    chaotic = theory.signal_propagation("tanh", sw * 1.001, 0.05)
    assert chaotic.phase == "chaotic" and 0.99 < chaotic.c_star < 1


def test_vanishing_variance_freezes_correlations():
    """tanh at σ_b² = 0, σ_w² < 1: q* = 0 attracts at the rate χ_∥ = σ_w²; the network becomes linear, so the
    correlation map tends to the identity (χ_c → 1) while χ₁ = σ_w² < 1."""
    s = theory.signal_propagation("tanh", 0.8, 0.0)
    assert s.q_star == 0 and s.phase == "ordered" and s.chi_1 == pytest.approx(0.8, rel=1e-12)
    assert s.xi_q == pytest.approx(-1 / np.log(0.8), rel=1e-10) and s.xi_c == np.inf


def test_several_stable_fixed_points_are_all_returned():
    """φ = tanh(z) + 2 tanh(z)³ at σ_w² = 0.5, σ_b² = 0: q* = 0 attracts (χ_∥ = σ_w² φ'(0)² = 1/2), the cubic term
    lifts the length map above the diagonal (an unstable fixed point below 0.5) until tanh saturates (a stable one
    above 0.5)."""
    phi = sp.tanh(z) + 2 * sp.tanh(z) ** 3
    with pytest.warns(UserWarning, match="2 stable fixed points"):
        both = theory.signal_propagation(phi, 0.5, 0.0)
    assert isinstance(both, tuple) and len(both) == 2 and both[0].q_star == 0
    f = sp.lambdify(z, phi, "numpy")
    assert 0.5 * _expect(lambda x: f(np.sqrt(both[1].q_star) * x) ** 2) == pytest.approx(both[1].q_star, rel=1e-9)
    assert both[1].q_star > 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert theory.signal_propagation(phi, 0.5, 0.0, q=0.05).q_star == 0
        assert theory.signal_propagation(phi, 0.5, 0.0, q=2.0).q_star == both[1].q_star


@pytest.mark.parametrize("call, error, match", [
    (lambda: theory.signal_propagation("tanh", 0.0, 0.1), ValueError, "sigma_w2"),
    (lambda: theory.signal_propagation("tanh", -1.0, 0.1), ValueError, "sigma_w2"),
    (lambda: theory.signal_propagation("tanh", 1.0, -0.1), ValueError, "sigma_b2"),
    (lambda: theory.signal_propagation("tanh", True, 0.1), TypeError, "sigma_w2"),
    (lambda: theory.signal_propagation("tanh", 1.0, float("nan")), ValueError, "sigma_b2"),
    (lambda: theory.signal_propagation("tanh", 1.0, 0.1, q=-1.0), ValueError, "q"),
    (lambda: theory.signal_propagation("nope", 1.0, 0.1), ValueError, "activation"),
    (lambda: theory.order_chaos_line("tanh", [0.1, -0.1]), ValueError, "sigma_b2"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_symbolic_statement_prints_as_latex():
    s = theory.signal_propagation("erf", 1.5, 0.1)
    tex = s._repr_latex_()
    assert tex.startswith("$\\displaystyle") and "\\chi_{1}" in tex and "\\xi_{c}" in tex
    chi_1 = s.equations[2].rhs  # σ_w² E[erf'(u)²] = 4σ_w²/(π√(4q* + 1)), derived
    q = sp.Symbol("q^*", positive=True)
    assert sp.simplify(chi_1.xreplace({s.equations[2].rhs.free_symbols.difference({sigma_w2}).pop(): q})
                       - 4 * sigma_w2 / (sp.pi * sp.sqrt(4 * q + 1))) == 0
    assert s.q_star_expr is None and theory.signal_propagation("relu", 1.0, 0.1).q_star_expr is not None


def test_order_chaos_line_is_vectorised():
    sb = np.array([[0.01, 0.05], [0.1, 0.3]])
    line = theory.order_chaos_line("tanh", sb)
    assert line.shape == (2, 2) and np.all(np.diff(line.ravel()) > 0)
    assert line[0, 1] == theory.order_chaos_line("tanh", 0.05)


def test_phase_diagram_is_a_figure():
    pytest.importorskip("matplotlib")
    fig = theory.phase_diagram("erf", sigma_w2=[1.0, 2.0, 3.0], sigma_b2=[0.0, 0.1, 0.2])
    assert type(fig).__name__ == "Figure" and fig.axes and fig.axes[0].get_xlabel() == r"$\sigma_w^2$"
    fig = theory.phase_diagram("relu", sigma_w2=[1.0, 1.5, 2.5], sigma_b2=[0.0, 0.1])  # no fixed point beyond 2
    assert fig.axes[0].get_title().startswith("relu")


def test_cli_prints_the_critical_line_and_the_fixed_point(capsys):
    assert main(["derive", "signal", "--activation", "erf", "--sigma-b2", "0"]) == 0
    out = capsys.readouterr().out
    assert "σ_w,c² = 0.785398163" in out and "q* = 0" in out and "phase = critical" in out  # π/4, K* = 0
    assert main(["derive", "signal", "--activation", "relu", "--sigma-b2", "0.1"]) == 2


# ---------------------------------------------------------------------------------------------------------------
# The claims' criteria on synthetic measurements
# ---------------------------------------------------------------------------------------------------------------


def test_the_rate_estimator_recovers_a_geometric_decay():
    """Synthetic networks D_i^l = A e^{-λl}(1 + 0.05 ε_il): the bootstrapped rate covers λ within 4 SE."""
    from theory.claims import bootstrap
    from theory.claims.signal import _rate, _weights

    rng = np.random.default_rng(7)
    l, lam = np.arange(1, 21, dtype=float), 1 / 6.0
    D = 0.4 * np.exp(-lam * l) * (1 + 0.05 * rng.standard_normal((500, l.size)))
    rate, se = bootstrap(D, _rate(l, _weights(D)), 3)
    assert abs(rate - lam) < 4 * se and se < 0.01 * lam


def _sides():
    from theory.claims.signal import ACTIVATION, SIDES, SIGMA_B2

    return [theory.signal_propagation(ACTIVATION, sw, SIGMA_B2) for sw in SIDES.values()]


def test_depth_scale_rejects_its_rivals_and_a_prediction_off_by_ten_percent():
    from theory.claims.signal import depth_scale_result

    sides = _sides()
    xi_c, xi_q = np.array([s.xi_c for s in sides]), np.array([s.xi_q for s in sides])
    se, bias = 0.01 * xi_c, np.zeros(2)
    assert depth_scale_result(sides, xi_c, se, bias).verdict == "holds"
    assert depth_scale_result(sides, xi_q, se, bias).verdict == "fails"  # the rival ξ_q is what was measured
    slope_at_one = 1 / abs(np.log(sides[1].chi_1))  # the chaotic side measured at χ₁'s rate
    assert depth_scale_result(sides, [xi_c[0], slope_at_one], se, bias).verdict == "fails"
    assert depth_scale_result(sides, 1.1 * xi_c, se, bias).verdict == "fails"


def test_critical_line_rejects_exponential_decay():
    from theory.claims.signal import critical_result

    sw = theory.order_chaos_line("tanh", 0.05)
    predicted = {0.9: (0.050, 1.88), 1.0: (0.024, 1.06), 1.1: (0.010, 0.63)}  # (rate, exponent) of each sequence
    good = critical_result(sw, (0.024, 2e-4), (1.06, 0.01), predicted)
    assert good.verdict == "holds"
    ordered_rate = 1 / theory.signal_propagation("tanh", 0.9 * sw, 0.05).xi_c
    assert critical_result(sw, (ordered_rate, 2e-4), (1.06, 0.01), predicted).verdict == "fails"
    assert critical_result(sw, (0.024, 2e-4), (1.88, 0.01), predicted).verdict == "fails"
    assert critical_result(sw, (0.024, 2e-4), (1.1 * 1.06, 0.01), predicted).verdict == "fails"
