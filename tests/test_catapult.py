"""The catapult mechanism: the derived uv map against the literature and against gradient descent written from its
definition, its fixed points and phases, the numeric map, the phase classifier, the claims and the CLI topic."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import theory.catapult as cat
import theory.claims.catapult as claims_catapult
from theory import stats
from theory.claims import base
from theory.cli import main
from theory.montecarlo import MLP, train
from theory.symbols import eta, n

f, lam, f0, lam0, g = cat.f, cat.lam, cat.f0, cat.lam0, cat.g

# Lewkowycz et al. 2020 and lecture notes 001, typed in from there, not from the package:
LITERATURE_F = (1 - eta * lam + eta**2 * f**2 / n) * f
LITERATURE_LAM = lam + (eta * f**2 / n) * (eta * lam - 4)


def literature_step(f_t, lam_t, eta_t, n_t):
    """The same map in NumPy, written independently of the package."""
    return (1 - eta_t * lam_t + eta_t**2 * f_t**2 / n_t) * f_t, lam_t + (eta_t * f_t**2 / n_t) * (eta_t * lam_t - 4)


def uv_descent(u, v, rate, steps):
    """Gradient descent on L = f²/2, f = vᵀu/√n, from the definition: ∂L/∂u = f v/√n, ∂L/∂v = f u/√n (batched)."""
    width = u.shape[-1]
    fs, lams = [], []
    for _ in range(steps + 1):
        out = np.sum(u * v, axis=-1) / np.sqrt(width)
        fs.append(out)
        lams.append((np.sum(u**2, axis=-1) + np.sum(v**2, axis=-1)) / width)
        u, v = u - rate * out[..., None] * v / np.sqrt(width), v - rate * out[..., None] * u / np.sqrt(width)
    return np.array(fs), np.array(lams)


# ---------------------------------------------------------------------------------------------------------------
# The derivation
# ---------------------------------------------------------------------------------------------------------------


def test_the_map_derived_from_gradient_descent_is_the_literature_map():
    f_next, lam_next = cat.uv_map()
    assert sp.simplify(f_next - LITERATURE_F) == 0
    assert sp.simplify(lam_next - LITERATURE_LAM) == 0
    assert f_next.free_symbols == {f, lam, eta, n} and lam_next.free_symbols == {f, lam, eta, n}


def test_inner_product_map_is_one_gradient_step_on_explicit_vectors():
    rng = np.random.default_rng(0)
    u, v, rate = rng.standard_normal(7), rng.standard_normal(7), 0.37
    fs, _ = uv_descent(u[None], v[None], rate, 1)
    out = u @ v / np.sqrt(7)
    u1, v1 = u - rate * out * v / np.sqrt(7), v - rate * out * u / np.sqrt(7)
    values = {cat.uv: u @ v, cat.uu: u @ u, cat.vv: v @ v, eta: rate, n: 7}
    expected = (u1 @ v1, u1 @ u1, v1 @ v1)
    for expr, want in zip(cat.inner_product_map(), expected):
        assert float(expr.subs(values)) == pytest.approx(want, rel=1e-12)
    assert fs[1, 0] == pytest.approx(u1 @ v1 / np.sqrt(7), rel=1e-12)


def test_rescaled_map_does_not_depend_on_the_width():
    g_next, lam_next = cat.rescaled_map()
    assert n not in g_next.free_symbols | lam_next.free_symbols
    assert sp.simplify(g_next - LITERATURE_F.subs(f, sp.sqrt(n) * g) / sp.sqrt(n)) == 0
    assert sp.simplify(lam_next - LITERATURE_LAM.subs(f, sp.sqrt(n) * g)) == 0


def test_fixed_points_are_the_line_f_zero_and_two_unstable_points():
    points = cat.fixed_points()
    assert {f: 0} in points
    others = [p for p in points if p != {f: 0}]
    assert sorted(sp.simplify(p[f] * eta / sp.sqrt(n)) for p in others) == [-2, 2]
    assert all(sp.simplify(p[lam] - 4 / eta) == 0 for p in others)
    for p in others:  # both eigenvalues outside the unit circle (9 and 5)
        assert sorted(cat.jacobian(p).eigenvals()) == [5, 9]
    assert cat.jacobian({f: 0}).eigenvals() == {1 - eta * lam: 1, 1: 1}


def canonical(condition):
    """A relation or a conjunction of relations in a canonical form, for structural comparison."""
    parts = condition.args if isinstance(condition, sp.And) else (condition,)
    return frozenset(p.canonical for p in parts)


def test_stable_set_and_phase_conditions_are_the_literature_inequalities():
    assert canonical(cat.stable_set()) == canonical(sp.And(sp.Eq(f, 0), lam < 2 / eta))
    conditions = cat.phase_conditions()
    assert canonical(conditions["lazy"]) == canonical(eta <= 2 / lam0)
    assert canonical(conditions["divergent"]) == canonical(eta >= 4 / lam0)
    assert canonical(conditions["catapult"]) == canonical(sp.And(2 / lam0 < eta, eta < 4 / lam0))
    assert cat.boundaries() == (2 / lam0, 4 / lam0)


def test_growth_time_solves_the_linear_growth_equation():
    expected = sp.log(sp.sqrt(n) / sp.Abs(f0)) / sp.log(sp.Abs(1 - eta * lam0))
    assert sp.simplify(sp.expand_log(cat.growth_time() - expected, force=True)) == 0


# ---------------------------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(f_t=st.floats(-50, 50), lam_t=st.floats(1e-3, 10), eta_t=st.floats(1e-3, 5), n_t=st.integers(1, 10**6))
def test_step_is_the_literature_map(f_t, lam_t, eta_t, n_t):
    np.testing.assert_allclose(cat.step(f_t, lam_t, eta_t, n_t), literature_step(f_t, lam_t, eta_t, n_t),
                               rtol=1e-12, atol=1e-12 * (1 + abs(f_t) + lam_t))


def test_trajectory_broadcasts_over_a_grid_of_learning_rates_and_widths():
    etas, widths = np.array([0.2, 0.9, 1.2, 1.7])[:, None], np.array([16.0, 256.0, 4096.0])[None, :]
    traj = cat.trajectory(0.7, 2.0, etas, widths, 50)
    assert traj.f.shape == traj.lam.shape == (51, 4, 3) and traj.f.dtype == np.float64
    for i in range(4):
        for j in range(3):
            ft, lt = 0.7, 2.0
            for k in range(50):
                ft, lt = literature_step(ft, lt, etas[i, 0], widths[0, j])
            assert traj.f[-1, i, j] == pytest.approx(ft, rel=1e-9, abs=1e-300)
            assert traj.lam[-1, i, j] == pytest.approx(lt, rel=1e-12)


def test_uv_networks_follow_the_map_to_rounding_over_hundreds_of_steps():
    rng = np.random.default_rng(1)
    width, cs = 512, np.array([0.5, 1.5, 1.9, 2.5, 3.0, 3.5, 3.9])
    u, v = rng.standard_normal((len(cs), width)), rng.standard_normal((len(cs), width))
    lam_init = (np.sum(u**2, 1) + np.sum(v**2, 1)) / width
    rate = cs / lam_init
    fs, lams = uv_descent(u, v, rate[:, None], 300)
    traj = cat.trajectory(fs[0], lams[0], rate, width, 300)
    np.testing.assert_allclose(traj.f / np.sqrt(width), fs / np.sqrt(width), rtol=0, atol=1e-11)
    np.testing.assert_allclose(traj.lam, lams, rtol=0, atol=1e-11)
    assert list(traj.phase()) == list(cat.phase(rate, lam_init))


def test_the_oracles_identity_network_is_the_uv_model():
    """MLP(1, (n,), identity) on x = 1 is f = vᵀu/√n with NTK (|u|²+|v|²)/n, and montecarlo.train is its GD."""
    width, rate, steps = 64, 0.6, 40
    mlp = MLP(1, (width,), "identity", sigma_w2=1.0, sigma_b2=0.0)
    params = mlp.init(3, 1)
    u, v = params[0][0][:, :, 0], params[1][0][:, 0, :]
    fs, lams = uv_descent(u, v, rate, steps)
    assert mlp.ntk(params, np.ones((1, 1)))[0, 0, 0] == pytest.approx(lams[0, 0], rel=1e-13)
    run = train(mlp, params, np.ones((1, 1)), np.zeros((1, 1)), rate, steps)
    np.testing.assert_allclose(run.f_train[:, 0, 0, 0], fs[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(run.loss[:, 0], fs[:, 0] ** 2 / 2, rtol=1e-10, atol=1e-14)


def test_iterated_map_is_in_the_predicted_phase_away_from_the_boundaries():
    cs = np.array([0.5, 1.0, 1.5, 1.95, 2.05, 2.5, 3.0, 3.5, 3.95, 4.05, 4.5, 6.0])
    f_init = np.random.default_rng(2).standard_normal(20)[:, None]
    traj = cat.trajectory(f_init, 2.0, cs / 2, 4096, 1500)
    np.testing.assert_array_equal(traj.phase(), np.broadcast_to(cat.phase(cs / 2, 2.0), traj.phase().shape))
    catapult = traj.phase() == "catapult"
    assert np.all((cs / 2 * traj.lam[-1])[catapult] < 2)  # the kernel ends in the stable set


def test_phase_on_the_boundaries_and_vectorized():
    assert list(cat.phase([1.0, 1.0 + 1e-12, 2.0 - 1e-12, 2.0, 3.0], 2.0)) == [
        "lazy", "catapult", "catapult", "divergent", "divergent"]
    assert cat.phase(np.ones((2, 3)), np.array([1.0, 3.0, 5.0])).shape == (2, 3)


def test_observed_phase_rules():
    series = np.array([
        [1.0, 0.5, 0.25, 0.1],      # decreasing: lazy
        [1.0, 2.0, 0.5, 0.1],       # rises, comes back: catapult
        [1.0, 0.5, 0.9, 0.2],       # rises below its start, comes back: catapult
        [1.0, 2.0, 4.0, 8.0],       # ends above its start: divergent
        [1.0, 2.0, np.inf, np.nan],  # overflows: divergent
        [1.0, 1e-9, 2e-9, 1e-10],   # noise below the floor: lazy
        [0.0, 0.0, 0.0, 0.0],       # f = 0 stays: lazy
    ]).T
    assert list(cat.observed_phase(series)) == ["lazy", "catapult", "catapult", "divergent", "divergent", "lazy",
                                                 "lazy"]


@pytest.mark.parametrize("call, match", [
    (lambda: cat.trajectory(1.0, 2.0, 1.0, 10, -1), "steps"),
    (lambda: cat.trajectory(1.0, 2.0, 1.0, 10, 2.5), "steps"),
    (lambda: cat.trajectory(1.0, -2.0, 1.0, 10, 5), "lam_init"),
    (lambda: cat.trajectory(np.nan, 2.0, 1.0, 10, 5), "f_init"),
    (lambda: cat.trajectory(1.0, 2.0, 0.0, 10, 5), "eta_"),
    (lambda: cat.trajectory(1.0, 2.0, 1.0, 0, 5), "n_"),
    (lambda: cat.phase(-1.0, 2.0), "eta_"),
    (lambda: cat.phase(1.0, np.inf), "lam0_"),
])
def test_bad_inputs_raise_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_degenerate_inputs_give_finite_answers():
    traj = cat.trajectory(0.0, 2.0, 1.5, 1, 10)  # f = 0 is a fixed point; width 1 is legal
    assert np.all(traj.f == 0) and np.all(traj.lam == 2.0)
    assert cat.trajectory(1.0, 2.0, 1.0, 10, 0).f.shape == (1,)


# ---------------------------------------------------------------------------------------------------------------
# Claims: their criteria can fail
# ---------------------------------------------------------------------------------------------------------------


def test_rounding_bound_rejects_a_wrong_map():
    """The exactness criterion: networks against the right map pass, against a map with 3 for 4 they fail."""
    cs = np.repeat([1.5, 2.5, 3.0], 2)
    mlp, params, lam_init = claims_catapult._uv_start(256, len(cs), 0, "test")
    rate = cs / lam_init
    f_net, lam_net = claims_catapult._uv_descent(mlp, params, rate, 200)
    right = cat.trajectory(f_net[0], lam_net[0], rate, 256, 200)
    bound = claims_catapult._rounding_bound(right, rate, 256)
    gap = np.maximum(np.abs(f_net - right.f) / 16, np.abs(lam_net - right.lam))
    assert np.max(gap / bound) <= 1
    wrong_lam = np.array(lam_net)
    ft, lt = f_net[0], lam_net[0]
    for k in range(200):
        ft, lt = (1 - rate * lt + rate**2 * ft**2 / 256) * ft, lt + (rate * ft**2 / 256) * (rate * lt - 3)
        wrong_lam[k + 1] = lt
    assert np.max(np.abs(lam_net - wrong_lam) / bound) > 1e3


def test_relu_phase_reads_the_loss_and_the_kernel():
    spike = np.array([1.0, 4.0, 0.5, 0.01])
    assert claims_catapult._relu_phase(spike, np.array([3.0, 1.2])) == "catapult"
    assert claims_catapult._relu_phase(np.array([1.0, 0.5, 0.1]), np.array([1.5, 1.5])) == "lazy"
    # a network that blew up and whose ReLUs died: its loss is back below its start, its kernel is gone
    assert claims_catapult._relu_phase(spike, np.array([12.0, np.nan])) == "divergent"
    assert claims_catapult._relu_phase(spike, np.array([12.0, 0.0])) == "divergent"
    assert claims_catapult._relu_phase(np.array([1.0, 40.0, np.inf]), np.array([12.0, 1e30])) == "divergent"


def synthetic_changes(exponent, seed):
    """Per-network kernel changes C n^s with 20% log-normal scatter, at the widths of the default experiment."""
    rng = np.random.default_rng(seed)
    widths = np.repeat([128, 256, 512, 1024], [24, 12, 6, 6])
    return widths, 0.7 * (widths / 128.0) ** exponent * np.exp(0.2 * rng.standard_normal(len(widths)))


@pytest.mark.parametrize("exponent", [-1.0, -0.5, 0.0, 0.3])
def test_exponent_interval_covers_the_true_exponent(exponent):
    misses = 0
    for seed in range(200):
        low, high = stats.log_slope(*synthetic_changes(exponent, seed)).interval(0.01)
        misses += not low <= exponent <= high
    assert misses <= 8  # a 99% interval: 2 misses expected in 200, P(> 8) < 1e-3


def test_kernel_change_criteria_fail_for_the_wrong_scaling():
    def verdict(true, predicted, rival):  # as in catapult.relu_kernel_change.*
        return base.power_law(*synthetic_changes(true, 0), None, predicted, rivals={"rival": rival}).verdict

    assert verdict(0.0, 0.0, -0.5) == "holds" and verdict(-0.5, 0.0, -0.5) == "fails"
    assert verdict(-0.5, -0.5, 0.0) == "holds" and verdict(0.0, -0.5, 0.0) == "fails"


def test_claims_are_registered_with_sentences_and_predictions():
    ids = [i for i in base.registry() if i.startswith("catapult.")]
    assert len(ids) == 9
    for i in ids:
        c = base.registry()[i]
        assert c.statement.endswith(".") and c.source
        assert isinstance(c.prediction(), sp.Basic) and c.latex()


@pytest.mark.slow
@pytest.mark.parametrize("claim_id", ["catapult.uv_map_exact", "catapult.uv_phase_diagram",
                                      "catapult.uv_peak_scaling", "catapult.uv_growth_time"])
def test_uv_claims_hold_at_quick_size(claim_id):
    result, _ = base.run(base.registry()[claim_id], 0, "quick")
    assert result.passed, result.criterion


@pytest.mark.slow
def test_relu_claims_hold_at_quick_size():
    for claim_id in ["catapult.relu_lazy_boundary", "catapult.relu_divergence_boundary", "catapult.relu_final_kernel",
                     "catapult.relu_kernel_change.catapult", "catapult.relu_kernel_change.lazy"]:
        result, _ = base.run(base.registry()[claim_id], 0, "quick")
        assert result.passed, (claim_id, result.criterion)


# ---------------------------------------------------------------------------------------------------------------
# theory derive catapult
# ---------------------------------------------------------------------------------------------------------------


def test_derive_topic_prints_the_map_and_the_phases(capsys):
    assert main(["derive", "catapult"]) == 0
    assert "f_{t+1}" in capsys.readouterr().out
    assert main(["derive", "catapult", "--phases", "--latex"]) == 0
    out = capsys.readouterr().out
    assert r"\lambda_{t+1}" in out and r"\frac{4}{\lambda_{0}}" in out
    assert main(["derive", "catapult", "--rescaled"]) == 0
    assert "g_{t+1}" in capsys.readouterr().out


@pytest.mark.slow
def test_catapult_kernel_change_rejects_a_ten_percent_error():
    """At the default size the catapult runs' width exponent (runs whose catapult is over, ηλ back below 2) rejects
    0 ± 0.1 as well as the lazy rival -1/2."""
    result, _ = base.run(base.registry()["catapult.relu_kernel_change.catapult"], 0, "default")
    assert result.passed, result.criterion
    assert all(row.rejected for row in result.perturb(0.1))
