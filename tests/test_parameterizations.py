"""abc-parameterizations: Yang & Hu's Table 1 and theorems against the scaling calculus, the symmetry, the standard
parameterization's kernels, and the coordinate check on finite networks."""

import contextlib
import io

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import theory.claims.parameterizations as claims
from theory import nngp_ntk
from theory.claims.base import power_law, run
from theory.montecarlo import MLP, train
from theory.montecarlo.coordinate_check import coordinate_check
from theory.parameterizations import MF, MUP, MUP_ADAM, NTK, SP, abc, family, symbolic

H = sp.S.Half


# ---------------------------------------------------------------------------------------------------------------
# Yang & Hu 2021 written here from the paper (Def. 3.2, Thm 3.3), as independent oracles
# ---------------------------------------------------------------------------------------------------------------


def yang_r(a, b, c):
    """Def. 3.2: r = min(a_{L+1}+b_{L+1}, 2a_{L+1}+c) + c - 1 + min_{l<=L} [2a_l + 1(l = 1)]."""
    L = len(a) - 1
    return (min(a[L] + b[L], 2 * a[L] + c) + c - 1 + min(2 * a[l] + (1 if l == 0 else 0) for l in range(L)))


def yang_stable(a, b, c):
    """Thm 3.3."""
    L, r = len(a) - 1, yang_r(a, b, c)
    return (a[0] + b[0] == 0 and all(a[l] + b[l] == H for l in range(1, L)) and a[L] + b[L] >= H and r >= 0
            and 2 * a[L] + c >= 1 and a[L] + b[L] + r >= 1)


def yang_nontrivial(a, b, c):
    r, L = yang_r(a, b, c), len(a) - 1
    return yang_stable(a, b, c) and (a[L] + b[L] + r == 1 or 2 * a[L] + c == 1)


def exponents():
    return st.integers(-6, 6).map(lambda k: sp.Rational(k, 4))


@st.composite
def sgd_abcs(draw, stable_init=False):
    """(a, b, c) of depth 1..4 with quarter-integer exponents; optionally on the stable-initialization manifold."""
    L = draw(st.integers(1, 4))
    a = [draw(exponents()) for _ in range(L + 1)]
    if stable_init:
        b = [-a[0]] + [H - x for x in a[1:L]] + [H - a[L] + draw(st.integers(0, 4)) / sp.Integer(4)]
    else:
        b = [draw(exponents()) for _ in range(L + 1)]
    return a, b, draw(exponents())


def _bounded_exactly(p, steps=3):
    """Stability read off the exact calculus: Θ(1) activations, f = O(1), every update O(1)."""
    s = p.sizes(steps)
    return (all(e == 0 for e in s.h) and s.f <= 0 and all(e <= 0 for row in s.dh for e in row)
            and all(e <= 0 for e in s.df))


# ---------------------------------------------------------------------------------------------------------------
# Table 1 and the theorems
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_table_1_of_yang_and_hu(depth):
    """r = 1/2, 1/2, 0, 0 for SP (c = 1), NTK, MF (L = 1), μP; SP with c = 0 is unstable."""
    table = {SP(depth, c=1): (H, "kernel"), NTK(depth): (H, "kernel"), MF(1): (0, "features"),
             MUP(depth): (0, "features")}
    for p, (r, regime) in table.items():
        assert p.r == r and p.stable is sp.true and p.nontrivial is sp.true, p
        assert p.feature_learning == (regime == "features") and p.kernel_regime == (regime == "kernel"), p
    assert SP(depth).stable is sp.false and SP(depth).r == -1


def test_the_exponents_of_table_1():
    assert SP(3).a == (0, 0, 0, 0) and SP(3).b == (0, H, H, H) and SP(3, c=1).c == (1,) * 4
    assert NTK(3).a == (0, H, H, H) and NTK(3).b == (0,) * 4 and NTK(3).c == (0,) * 4
    assert MF(1).a == (0, 1) and MF(1).b == (0, 0) and MF(1).c == (-1, -1)
    assert MUP(3).a == (-H, 0, 0, H) and MUP(3).b == (H,) * 4 and MUP(3).c == (0,) * 4


@settings(max_examples=80)
@given(sgd_abcs())
def test_r_is_definition_3_2(abc_):
    a, b, c = abc_
    p = abc(a, b, c)
    assert p.r == yang_r(a, b, c)
    L = len(a) - 1
    own = [min(a[L] + b[L], 2 * a[L] + c) + c - 1 + 2 * a[l] + int(l == 0) for l in range(L)]
    assert list(p.r_layers) == own


@settings(max_examples=80)
@given(st.one_of(sgd_abcs(), sgd_abcs(stable_init=True)))
def test_stability_nontriviality_and_regimes_are_theorem_3_3(abc_):
    a, b, c = abc_
    p = abc(a, b, c)
    assert bool(p.stable) == yang_stable(a, b, c)
    assert bool(p.nontrivial) == yang_nontrivial(a, b, c)
    assert bool(p.feature_learning) == (yang_stable(a, b, c) and yang_r(a, b, c) == 0)
    assert bool(p.kernel_regime) == (yang_nontrivial(a, b, c) and yang_r(a, b, c) > 0)
    assert not (p.feature_learning and p.kernel_regime)  # the dynamical dichotomy
    assert bool(p.stable) == (not p.failures())


@settings(max_examples=50)
@given(st.one_of(sgd_abcs(), sgd_abcs(stable_init=True)), st.sampled_from(["sgd", "adam"]))
def test_the_stability_ansatz_is_self_consistent(abc_, optimizer):
    """Stable by the ansatz iff the exact calculus (no assumption) keeps every size bounded; then both agree."""
    p = abc(*abc_, optimizer=optimizer)
    assert bool(p.stable) == _bounded_exactly(p)
    if p.stable:
        assert p.sizes(3) == p.sizes(3, assume_stable=True)


@pytest.mark.slow
def test_symbolic_conditions_are_relations_that_solve_for_the_family():
    c = sp.Symbol("c", real=True)
    sp_c = abc(SP(2).a, SP(2).b, c)
    assert sp_c.solve(c) == sp.Interval(1, sp.oo)  # SP needs a learning rate O(1/n)
    assert sp_c.solve(c, "nontrivial") == sp.FiniteSet(1)
    assert sp_c.solve(c, "feature_learning") is sp.S.EmptySet  # no c makes SP learn features
    assert abc(MUP(2).a, MUP(2).b, c).solve(c, "feature_learning") == sp.FiniteSet(0)
    assert abc(NTK(2).a, NTK(2).b, c).solve(c, "kernel_regime") == sp.FiniteSet(0)
    q = symbolic(2)
    assert all(isinstance(rel, sp.Basic) and rel.free_symbols for rel in q.conditions.values())
    a1, b1 = sp.symbols("a_1 b_1", real=True)
    assert q.conditions["init h^1"] == sp.Eq(a1 + b1, 0)


@pytest.mark.parametrize("p, expected", [(SP(2), -1), (SP(2, c=1), 0), (NTK(3), 0), (NTK(3, c=-1), -1), (MF(1), 0),
                                         (MUP(4), 0), (MUP(2, c=1), 1), (MUP_ADAM(3), 0),
                                         (abc([1, 0, 0], [0, 0, 0], 0), -sp.oo)])
def test_largest_stable_learning_rate(p, expected):
    assert p.max_lr_exponent() == expected
    eps = p.max_lr_exponent()
    if eps.is_finite:
        assert abc(p.a, p.b, [c - eps for c in p.c], p.optimizer).stable is sp.true
        assert abc(p.a, p.b, [c - eps - sp.Rational(1, 8) for c in p.c], p.optimizer).stable is sp.false


def test_failures_say_which_condition_fails_and_how():
    assert SP(2).failures()[0] == "r fails: Delta x^L (the features' update) grows like n^(1)"
    bad_init = abc([0, 0, 0], [0, 0, 0], 0).failures()
    assert bad_init[0] == "init h^2 fails: h^2/h^1 at initialization grows like n^(1/2)"
    assert MUP(3).failures() == []


# ---------------------------------------------------------------------------------------------------------------
# The scaling calculus on classic cases
# ---------------------------------------------------------------------------------------------------------------


def test_one_hidden_layer_ntk_moves_its_weights_like_n_to_the_minus_half():
    """Lecture notes 001: in the NTK parameterization dW/dt and the hidden pre-activations are O(n^{-1/2})."""
    s = NTK(1).sizes(1)
    assert s.h == (0,) and s.f == 0 and s.dh == ((-H,),) and s.df == (0,)


def test_unstable_sizes_grow_with_the_steps():
    s = SP(2).sizes(2)
    assert s.dh[0] == (-H, H) and s.df[0] == sp.Rational(3, 2)  # ΔW^{L+1} Δx^L aligned once Δh >> h
    assert all(later > first for later, first in zip(s.dh[1], s.dh[0]))


def test_adam_mup_is_the_table_3_form_and_the_yang_hu_form_by_a_per_layer_shift():
    """Yang et al. 2022 Table 3 (μP, no multipliers) is Yang & Hu's μP up to the per-layer symmetry
    θ = (-1/2, 0, 1/2)."""
    shifted = MUP_ADAM(2).shift([-H, 0, H])
    assert shifted.a == MUP(2).a and shifted.b == MUP(2).b and shifted.c == (H, 1, H)
    sgd_table_3 = abc([0, 0, 0], [0, H, 1], [-1, 0, 1])
    moved = sgd_table_3.shift([-H, 0, H])
    assert (moved.a, moved.b, moved.c) == (MUP(2).a, MUP(2).b, MUP(2).c)


# ---------------------------------------------------------------------------------------------------------------
# The symmetry
# ---------------------------------------------------------------------------------------------------------------


def _derived(p):
    return (p.r, p.r_layers, tuple(p.conditions.values()), p.stable, p.nontrivial, p.feature_learning,
            p.kernel_regime, p.sizes(2), p.max_lr_exponent(), p.failures())


@pytest.mark.slow
@settings(max_examples=25)
@given(st.one_of(sgd_abcs(), sgd_abcs(stable_init=True)), st.sampled_from(["sgd", "adam"]), st.data())
def test_the_symmetry_leaves_every_derived_quantity_unchanged(abc_, optimizer, data):
    p = abc(*abc_, optimizer=optimizer)
    theta = data.draw(st.one_of(exponents(), st.lists(exponents(), min_size=p.depth + 1, max_size=p.depth + 1)))
    assert _derived(p.shift(theta)) == _derived(p)


def test_the_symmetry_holds_symbolically_and_a_wrong_one_is_caught():
    theta = sp.Symbol("theta", real=True)
    for q in (symbolic(2), symbolic(2, "adam")):
        moved = q.shift(theta)
        assert sp.expand(moved.r - q.r) == 0
        assert all(sp.simplify(x.lhs - x.rhs - (y.lhs - y.rhs)) == 0
                   for x, y in zip(moved.conditions.values(), q.conditions.values()))
    wrong = abc([x + H for x in MUP(2).a], [x - H for x in MUP(2).b], [x - H for x in MUP(2).c])  # Adam's rule
    assert wrong.r != MUP(2).r


# ---------------------------------------------------------------------------------------------------------------
# Construction and errors
# ---------------------------------------------------------------------------------------------------------------


def test_families_build_any_depth_and_accept_floats():
    assert MUP(3).depth == 3 and family("mup") is MUP and family("MUP-ADAM") is MUP_ADAM
    assert abc([-0.5, 0, 0.5], [0.5] * 3, 0.0).r == 0


@pytest.mark.parametrize("call, match", [
    (lambda: abc([0], [0], 0), "a"), (lambda: abc([0, 0], [0, 0, 0], 0), "b"), (lambda: abc([0, 0], [0, 0], [0]), "c"),
    (lambda: abc([0, 0], [0, 0], sp.I), "c"), (lambda: abc([0, 0], [0, 0], sp.oo), "c"),
    (lambda: abc([0, 0], [0, 0], 0, optimizer="rmsprop"), "optimizer"), (lambda: MF(2), "depth"),
    (lambda: MUP(0), "depth"),
    (lambda: abc([0, 0], [0, sp.Symbol("b")], sp.Symbol("c")).solve(sp.Symbol("c")), "symbol"),
    (lambda: family("xp"), "parameterization"), (lambda: MUP(2).sizes(0), "steps"),
    (lambda: symbolic(2).sizes(), "sizes"), (lambda: symbolic(2).max_lr_exponent(), "max_lr_exponent"),
    (lambda: MUP(2).solve(sp.Symbol("c"), "chaos"), "regime"),
])
def test_bad_arguments_raise_naming_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_abc_rejects_non_numbers():
    with pytest.raises(TypeError, match="a"):
        abc([True, 0], [0, 0], 0)
    with pytest.raises(TypeError, match="b"):
        abc([0, 0], ["x y z ,", 0], 0)


def test_derive_abc_prints_the_summary():
    from theory.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["derive", "abc", "--param", "mup", "--depth", "3"]) == 0
        assert main(["derive", "abc", "--depth", "2", "--latex"]) == 0
    text = out.getvalue()
    assert "r = 0" in text and "feature learning = True" in text and "e(Δ(h₁)) = [0  0  0]" in text
    assert r"r \geq 0" in text and r"a_{1} + b_{1} = 0" in text and "kernel regime &=  nontrivial" in text


# ---------------------------------------------------------------------------------------------------------------
# The standard parameterization's NNGP and NTK
# ---------------------------------------------------------------------------------------------------------------


def _unit_rows(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(d)


@pytest.mark.slow  # the first evaluation of the ReLU maps compiles them
def test_standard_ntk_depth_one_is_the_arc_cosine_closed_form():
    """Θ = 1 + n E[relu relu] + K̇ (1 + x·x'), with Cho & Saul's E and K̇ = σ_w²(π - θ)/2π (written here)."""
    x = _unit_rows(5, 4, 0) * np.array([[0.5], [1.0], [1.5], [2.0], [1.0]])
    sw, sb, n = 1.7, 0.3, 300
    d = x.shape[1]
    k0 = sb + sw * x @ x.T / d
    diag = np.diag(k0)
    th = np.arccos(np.clip(k0 / np.sqrt(np.outer(diag, diag)), -1, 1))
    e = np.sqrt(np.outer(diag, diag)) * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)
    expected = 1 + n * e + sw * (np.pi - th) / (2 * np.pi) * (1 + x @ x.T)
    out = nngp_ntk(x, None, "relu", 1, sw, sb, parameterization="standard", widths=n)
    np.testing.assert_allclose(out.ntk, expected, rtol=1e-12)
    np.testing.assert_allclose(out.nngp, nngp_ntk(x, None, "relu", 1, sw, sb).nngp, rtol=1e-15)  # to rounding


@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_standard_ntk_is_affine_in_the_widths_with_the_post_activation_kernel_as_slope(act):
    """Θ grows linearly in each width: ∂Θ/∂n_{L-1} = <φφ>_{K^{L-1}} = (K^L - σ_b²)/σ_w², exactly."""
    x = _unit_rows(4, 3, 1)
    sw, sb = 1.5, 0.2
    nngp = nngp_ntk(x, None, act, 2, sw, sb).nngp
    t = [nngp_ntk(x, None, act, 2, sw, sb, parameterization="standard", widths=(40, w)).ntk for w in (50, 150, 250)]
    np.testing.assert_allclose(t[2] - t[1], t[1] - t[0], rtol=1e-10)
    np.testing.assert_allclose((t[1] - t[0]) / 100, (nngp - sb) / sw, rtol=1e-9)
    assert np.all(np.diag(t[2]) > np.diag(t[0]))


def _standard_mc_ntk(x, depth, width, sw, sb, networks, seed):
    """Per-network empirical NTK of standard-parameterized networks, from per-input gradients (independent of
    MLP.ntk): MLP with multipliers 1 and init_stds σ_w/√fan_in is the standard network; its biases σ_b b are the
    trained biases b~ = σ_b b, so ∂f/∂b~ = (∂f/∂b)/σ_b."""
    d = x.shape[1]
    fans = [d] + [width] * depth
    mlp = MLP(d, (width,) * depth, "relu", sigma_b2=sb, multipliers=[1.0] * (depth + 1),
              init_stds=[np.sqrt(sw / f) for f in fans])
    params = mlp.init(seed, networks)
    grads = []
    for i in range(len(x)):
        cot = np.zeros((networks, len(x), 1))
        cot[:, i] = 1
        grads.append(mlp.grads(params, x, cot))
    theta = np.zeros((networks, len(x), len(x)))
    for i in range(len(x)):
        for j in range(len(x)):
            for (dwi, dbi), (dwj, dbj) in zip(grads[i], grads[j]):
                theta[:, i, j] += np.sum(dwi * dwj, axis=(1, 2)) + np.sum(dbi * dbj, axis=1) / sb
    return theta


@pytest.mark.slow
@pytest.mark.parametrize("depth, width, networks", [(1, 64, 400), (2, 256, 150)])
def test_standard_ntk_is_the_mean_empirical_ntk_of_standard_networks(depth, width, networks):
    x = _unit_rows(3, 4, 2)
    sw, sb = 2.0, 0.3
    mc = _standard_mc_ntk(x, depth, width, sw, sb, networks, 5)
    exact = nngp_ntk(x, None, "relu", depth, sw, sb, parameterization="standard", widths=width).ntk
    mean, se = mc.mean(0), mc.std(0, ddof=1) / np.sqrt(networks)
    # depth 1: the mean is exact at any width; depth 2: an O(1/n) relative bias, bounded by 2 (L - 1)/n
    bias = 2 * (depth - 1) / width * np.abs(exact)
    assert np.all(np.abs(mean - exact) <= 5 * se + bias), (mean, exact, se)


@pytest.mark.parametrize("kwargs, match", [
    (dict(parameterization="mup"), "parameterization"), (dict(parameterization="standard"), "widths"),
    (dict(widths=10), "widths"), (dict(parameterization="standard", widths=(10,)), "widths"),
    (dict(parameterization="standard", widths=0), "widths"),
])
def test_bad_parameterization_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nngp_ntk(np.ones((2, 3)), depth=2, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Finite networks
# ---------------------------------------------------------------------------------------------------------------


def _batch(seed=0, D=4, d=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((D, d)), rng.standard_normal(D)


def test_the_ntk_family_network_is_the_default_ntk_mlp():
    mlp, rates = NTK(2).network(5, 64)
    default = MLP(5, (64, 64), "relu", sigma_w2=2.0)
    np.testing.assert_allclose(mlp.multipliers, default.multipliers, rtol=1e-15)
    assert mlp.init_stds == (1.0, 1.0, 1.0) and np.all(rates == 1.0)
    mlp, rates = MUP(2).network(5, 64)
    np.testing.assert_allclose(mlp.multipliers, np.sqrt(2) * np.array([8 / np.sqrt(5), 1, 1 / 8]))
    np.testing.assert_allclose(mlp.init_stds, [1 / 8] * 3)


def test_sgd_is_the_package_gradient_descent():
    X, Y = _batch()
    p = MUP(2)
    out = coordinate_check({"p": (p, 0.3)}, X, Y, [32], steps=3, networks=2, seed=7, center=False)["p"]
    mlp, rates = p.network(5, 32)
    root = np.random.SeedSequence(7)
    seed = np.random.SeedSequence(root.entropy, spawn_key=(32,))
    ref = train(mlp, mlp.init(seed, 2), X, Y[:, None], lr=0.3 * rates, steps=3)
    np.testing.assert_allclose(out.f[0], np.moveaxis(ref.f_train[..., 0], 0, 1), rtol=1e-12, atol=1e-14)


def test_adams_first_step_moves_every_weight_by_its_rate():
    """With ε = 0 and bias correction, Adam's first step is -rate·sign(gradient) (Kingma & Ba 2015)."""
    X, Y = _batch(1)
    p = MUP_ADAM(1)
    mlp, rates = p.network(5, 16)
    params = mlp.init(3)
    g = mlp.grads(params, X, (mlp.apply(params, X) - Y[:, None]) / 4)
    from theory.montecarlo.coordinate_check import _adam

    moved = [(W.copy(), b.copy()) for W, b in params]
    _adam(0.1 * rates, 0.0)(moved, g, 1)
    for (W1, _), (W0, _), (dW, _), r in zip(moved, params, g, 0.1 * rates):
        np.testing.assert_allclose(W1 - W0, -r * np.sign(dW), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("p, theta, lr", [(MUP(2), sp.Rational(1, 3), 0.5), (NTK(3), -sp.Rational(1, 5), 1.0),
                                           (MUP_ADAM(2), [0, sp.Rational(1, 3), -1], 0.05)])
def test_shifted_parameterizations_train_the_same_function(p, theta, lr):
    X, Y = _batch(2)
    wrong = abc([x + sp.Rational(1, 3) for x in p.a], [x - sp.Rational(1, 3) for x in p.b], p.c, p.optimizer)
    runs = coordinate_check({"p": (p, lr), "q": (p.shift(theta), lr), "wrong": (wrong, lr)}, X, Y, [30, 70], steps=3,
                            networks=2, seed=1)
    scale = np.abs(runs["p"].f).max()
    assert np.abs(runs["p"].f - runs["q"].f).max() <= claims.SYMMETRY_TOLERANCE * scale
    assert np.abs(runs["p"].f - runs["wrong"].f).max() > 1e-3 * scale


def test_pooled_standard_errors_match_the_true_spread():
    """Lognormal per-network values with relative spread 0.3 (n/64)^{-1/2}: the pooled SE is unbiased to ~5%."""
    widths = np.array([64, 128, 256, 512, 1024, 2048])
    sd = 0.3 * (widths / 64) ** -0.5
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(400):
        values = np.exp(rng.standard_normal((6, 6)) * sd[:, None])
        _, se = claims._mean_se(values, widths)
        ratios.append(se / (np.sqrt(np.exp(sd**2) - 1) * np.exp(sd**2 / 2) / np.sqrt(6)))
    assert abs(np.mean(ratios) - 1) < 0.05


@pytest.mark.slow
def test_the_coordinate_check_tells_mup_from_ntk():
    """The slopes of μP pass μP's exponents and fail NTK's (the check can fail), and conversely."""
    X, Y = claims._batch()
    widths = [64, 128, 256, 512, 1024]
    runs = coordinate_check({"mup": (MUP(2), 0.5), "ntk": (NTK(2), 1.0)}, X, Y, widths, steps=1, networks=4, seed=3)
    for measured, truth, other in (("mup", MUP(2), NTK(2)), ("ntk", NTK(2), MUP(2))):
        mean, se = claims._mean_se(runs[measured].dh[:, :, 0, 1], np.array(widths))
        fit = lambda p: power_law(widths, mean, se, float(p.sizes(1).dh[0][1]), level=0.999)  # noqa: E731
        assert fit(truth).passed and not fit(other).passed


@pytest.mark.slow
def test_every_claim_holds_at_the_quick_size():
    from theory.claims.base import registry

    for id_, c in registry().items():
        if id_.startswith("parameterizations."):
            result, _ = run(c, 0, "quick")
            assert result.passed, (id_, result.criterion)
            assert result.plot is not None or id_ == "parameterizations.symmetry"
