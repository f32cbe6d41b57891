"""Tests of the finite-width Monte-Carlo networks (theory.montecarlo.mlp).

The derivative oracle is independent of the package: a per-parameter forward pass on a flat parameter vector, with
its own activations, differentiated by the complex step (∂g/∂θ_j = Im g(θ + i h e_j) / h, exact to rounding since
there is no subtraction).
"""

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings, strategies as st

import theory
from theory.montecarlo import MLP, EnsembleKernels, empirical_kernels

H = 1e-30


def _relu(z):
    # ReLU on complex numbers, analytic in the imaginary direction; slope 1/2 at 0, the package's a.e. derivative
    # convention (H(0) = 1/2), so that exact zeros (zero inputs, dead layers without bias) compare too.
    return z * np.where(z.real > 0, 1.0, np.where(z.real == 0, 0.5, 0.0))


ORACLE_PHI = {"relu": _relu, "tanh": np.tanh, "erf": scipy.special.erf, "identity": lambda z: z}


def _shapes(d, widths, out):
    return list(zip((*widths, out), (d, *widths)))


def _flat(params, e):
    """The parameter vector θ of network e: W⁰ (row-major), b⁰, W¹, b¹, ..."""
    return np.concatenate([np.concatenate([W[e].ravel(), b[e]]) for W, b in params])


def _oracle_f(theta, X, shapes, phi, sigma_w2, sigma_b2, multipliers=None):
    """f(X) of shape (N, out) from the flat (possibly complex) parameter vector θ, written from the definition.

    Layer l multiplies its weights by σ_w/√fan_in, or by ``multipliers[l]`` when given."""
    a, pos = X.astype(complex), 0
    for l, (n_out, n_in) in enumerate(shapes):
        W = theta[pos:pos + n_out * n_in].reshape(n_out, n_in)
        b = theta[pos + n_out * n_in:pos + n_out * (n_in + 1)]
        pos += n_out * (n_in + 1)
        m = np.sqrt(sigma_w2 / n_in) if multipliers is None else multipliers[l]
        z = m * a @ W.T + np.sqrt(sigma_b2) * b
        a = z if l == len(shapes) - 1 else phi(z)
    return a


def _oracle_jacobian(theta, X, shapes, phi, sigma_w2, sigma_b2, multipliers=None):
    """J[j, n, k] = ∂f_k(x_n)/∂θ_j by the complex step."""
    J = np.empty((theta.size, X.shape[0], shapes[-1][0]))
    for j in range(theta.size):
        step = theta.astype(complex)
        step[j] += 1j * H
        J[j] = _oracle_f(step, X, shapes, phi, sigma_w2, sigma_b2, multipliers).imag / H
    return J


def _close(actual, expected, rel=1e-10):
    np.testing.assert_allclose(actual, expected, rtol=rel, atol=rel * max(1.0, np.abs(expected).max()))


def _inputs(seed, n, d, zero_row):
    X = np.random.default_rng(seed).standard_normal((n, d))
    if zero_row:
        X[-1] = 0.0
    return X


networks_st = st.fixed_dictionaries({
    "activation": st.sampled_from(sorted(ORACLE_PHI)),
    "d": st.integers(1, 3),
    "widths": st.lists(st.integers(1, 5), max_size=3).map(tuple),
    "out": st.integers(1, 3),
    "sigma_w2": st.sampled_from([1.0, 2.0]),
    "sigma_b2": st.sampled_from([0.0, 0.7]),
})


@settings(max_examples=40, deadline=None)
@given(net=networks_st, seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), m=st.integers(0, 3),
       zero_row=st.booleans())
def test_ntk_equals_complex_step_jacobian(net, seed, n, m, zero_row):
    mlp = MLP(**net)
    params = mlp.init(seed, networks=2)
    X1 = _inputs(seed, n, net["d"], zero_row)
    X2 = None if m == 0 else _inputs(seed + 1, m, net["d"], False)
    theta = mlp.ntk(params, X1, X2)
    assert theta.shape == (2, n, n if X2 is None else m)
    shapes, phi = _shapes(net["d"], net["widths"], net["out"]), ORACLE_PHI[net["activation"]]
    for e in range(2):
        args = (_flat(params, e), shapes, phi, net["sigma_w2"], net["sigma_b2"])
        J1 = _oracle_jacobian(args[0], X1, *args[1:])
        J2 = J1 if X2 is None else _oracle_jacobian(args[0], X2, *args[1:])
        _close(theta[e], np.einsum("pnk,pmk->nm", J1, J2) / net["out"])
        # the oracle's forward pass agrees with the package's
        _close(mlp.apply(params, X1)[e], _oracle_f(args[0], X1, *args[1:]).real, rel=1e-13)


@pytest.mark.parametrize("activation", sorted(ORACLE_PHI))
@pytest.mark.parametrize("sigma_b2", [0.0, 0.5])
@pytest.mark.parametrize("out", [1, 2])
def test_ntk_tiny_network_fixed_cases(activation, sigma_b2, out):
    mlp = MLP(3, (4, 5), activation, out=out, sigma_w2=1.5, sigma_b2=sigma_b2)
    params = mlp.init(11, networks=3)
    X = _inputs(5, 4, 3, zero_row=False)
    theta = mlp.ntk(params, X)
    shapes = _shapes(3, (4, 5), out)
    for e in range(3):
        J = _oracle_jacobian(_flat(params, e), X, shapes, ORACLE_PHI[activation], 1.5, sigma_b2)
        _close(theta[e], np.einsum("pnk,pmk->nm", J, J) / out)


@settings(max_examples=30, deadline=None)
@given(net=networks_st, seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4))
def test_grads_equal_complex_step_gradient(net, seed, n):
    mlp = MLP(**net)
    params = mlp.init(seed, networks=2)
    X = _inputs(seed, n, net["d"], False)
    y = np.random.default_rng(seed + 2).standard_normal((n, net["out"]))
    grads = mlp.grads(params, X, mlp.apply(params, X) - y)  # loss = ½ Σ (f - y)²
    assert [(dW.shape, db.shape) for dW, db in grads] == [(W.shape, b.shape) for W, b in params]
    shapes, phi = _shapes(net["d"], net["widths"], net["out"]), ORACLE_PHI[net["activation"]]
    for e in range(2):
        theta = _flat(params, e)
        expected = np.empty(theta.size)
        for j in range(theta.size):
            step = theta.astype(complex)
            step[j] += 1j * H
            f = _oracle_f(step, X, shapes, phi, net["sigma_w2"], net["sigma_b2"])
            expected[j] = (0.5 * np.sum((f - y) ** 2)).imag / H
        _close(_flat(grads, e), expected)


def test_gradient_descent_step_lowers_the_loss():
    mlp = MLP(2, (16,), "tanh", out=2, sigma_b2=0.1)
    params = mlp.init(0, networks=4)
    X, y = _inputs(1, 6, 2, False), np.zeros((6, 2))

    def loss(p):
        return 0.5 * np.sum((mlp.apply(p, X) - y) ** 2, axis=(1, 2))

    grads = mlp.grads(params, X, mlp.apply(params, X) - y)
    stepped = [(W - 1e-2 * dW, b - 1e-2 * db) for (W, b), (dW, db) in zip(params, grads)]
    assert np.all(loss(stepped) < loss(params))


# --- determinism ---------------------------------------------------------------------------------------------

def test_same_seed_same_parameters():
    mlp = MLP(3, (4, 5), out=2)
    for (W1, b1), (W2, b2) in zip(mlp.init(7, 3), mlp.init(7, 3)):
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)
    assert not np.array_equal(mlp.init(7)[0][0], mlp.init(8)[0][0])


def test_network_i_does_not_depend_on_ensemble_size_or_start():
    mlp = MLP(3, (4, 5), out=2)
    three, five, tail = mlp.init(7, 3), mlp.init(7, 5), mlp.init(7, 2, start=3)
    for (W3, b3), (W5, b5), (Wt, bt) in zip(three, five, tail):
        assert np.array_equal(W3, W5[:3]) and np.array_equal(b3, b5[:3])
        assert np.array_equal(Wt, W5[3:]) and np.array_equal(bt, b5[3:])
    assert not np.array_equal(five[0][0][0], five[0][0][1])


def test_seed_scheme_is_seedsequence_spawn():
    mlp = MLP(3, (4,))
    params = mlp.init(np.random.SeedSequence(42), 3)
    assert np.array_equal(params[0][0], mlp.init(42, 3)[0][0])
    rng = np.random.default_rng(np.random.SeedSequence(42).spawn(3)[2])
    assert np.array_equal(params[0][0][2], rng.standard_normal((4, 3)))
    assert np.array_equal(params[0][1][2], rng.standard_normal(4))


def test_empirical_kernels_do_not_depend_on_chunk():
    X = _inputs(0, 4, 3, zero_row=True)
    X2 = _inputs(1, 2, 3, zero_row=False)
    runs = [empirical_kernels(X, X2, "tanh", depth=2, width=8, networks=5, seed=3, sigma_b2=0.2, out=2, chunk=c)
            for c in (1, 2, None)]
    for run in runs[1:]:
        assert np.array_equal(run.nngp, runs[0].nngp) and np.array_equal(run.ntk, runs[0].ntk)
    mlp = MLP(3, (8, 8), "tanh", out=2, sigma_b2=0.2)
    params = mlp.init(3, 5)
    assert np.array_equal(runs[0].ntk, mlp.ntk(params, X, X2))
    assert np.array_equal(runs[0].nngp, mlp.nngp(params, X, X2))


# --- shapes and edge cases -----------------------------------------------------------------------------------

@pytest.mark.parametrize("widths", [(), (6,), (6, 3, 4)])
@pytest.mark.parametrize("out", [1, 3])
def test_shapes(widths, out):
    mlp = MLP(2, widths, "erf", out=out, sigma_b2=0.1)
    assert mlp.depth == len(widths) and mlp.widths == widths and mlp.activation == theory.activation("erf")
    params = mlp.init(0, networks=4)
    assert [(W.shape, b.shape) for W, b in params] == [((4, o, i), (4, o)) for o, i in _shapes(2, widths, out)]
    X1, X2 = _inputs(0, 5, 2, False), _inputs(1, 3, 2, False)
    f, cache = mlp.forward(params, X1)
    assert f.shape == (4, 5, out) and len(cache.pre) == len(widths) and len(cache.inputs) == len(widths) + 1
    assert np.array_equal(mlp.apply(params, X1), f)
    assert mlp.ntk(params, X1, X2).shape == mlp.nngp(params, X1, X2).shape == (4, 5, 3)
    assert mlp.ntk(params, X1).shape == mlp.nngp(params, X1).shape == (4, 5, 5)
    result = empirical_kernels(X1, X2, "erf", depth=len(widths), width=widths or 7, networks=3, out=out)
    assert isinstance(result, EnsembleKernels)
    assert result.nngp.shape == result.ntk.shape == (3, 5, 3)
    assert result.nngp_mean.shape == result.nngp_se.shape == result.ntk_mean.shape == result.ntk_se.shape == (5, 3)


def test_depth_zero_ntk_is_the_input_kernel():
    X1, X2 = _inputs(0, 4, 3, True), _inputs(1, 2, 3, False)
    mlp = MLP(3, (), "relu", out=2, sigma_w2=1.3, sigma_b2=0.4)
    expected = 0.4 + 1.3 * X1 @ X2.T / 3
    _close(mlp.ntk(mlp.init(0, 3), X1, X2), np.broadcast_to(expected, (3, 4, 2)), rel=1e-14)


@pytest.mark.parametrize("activation", ["relu", "tanh", "identity", "step", "abs"])
def test_zero_norm_inputs_give_finite_values(activation):
    X = np.zeros((3, 4))
    X[1, 0] = 1.0
    result = empirical_kernels(X, activation=activation, depth=3, width=5, networks=2)
    assert np.all(np.isfinite(result.nngp)) and np.all(np.isfinite(result.ntk))


def test_standard_error_of_a_single_network_is_refused():
    result = empirical_kernels(np.eye(2), width=3, networks=1)
    assert result.ntk_mean.shape == (2, 2)  # the kernels are there
    for name in ("ntk_se", "nngp_se"):
        with pytest.raises(ValueError, match="networks >= 2"):
            getattr(result, name)


def test_progress_is_written_to_stderr(capsys):
    empirical_kernels(np.eye(2), width=3, networks=3, chunk=2, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("|")[2].split()[0] for line in lines] == ["2/3", "3/3"]


# --- argument validation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, name", [
    (dict(d=0), ValueError, "d"),
    (dict(d=2.0), TypeError, "d"),
    (dict(widths=(4, -1)), ValueError, r"widths\[1\]"),
    (dict(widths=(4, 2.5)), TypeError, r"widths\[1\]"),
    (dict(widths=4), TypeError, "widths"),
    (dict(widths="44"), TypeError, "widths"),
    (dict(out=0), ValueError, "out"),
    (dict(sigma_w2=-1.0), ValueError, "sigma_w2"),
    (dict(sigma_b2=float("nan")), ValueError, "sigma_b2"),
    (dict(activation="nope"), ValueError, "unknown activation"),
    (dict(activation="leaky_relu(a)"), ValueError, "parameters"),
])
def test_mlp_rejects_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        MLP(**{"d": 3, "widths": (4,), **kwargs})


def test_methods_reject_bad_arguments():
    mlp = MLP(3, (4,))
    params = mlp.init(0, 2)
    X = np.ones((2, 3))
    with pytest.raises(ValueError, match="X2"):
        mlp.ntk(params, X, np.ones((2, 4)))
    with pytest.raises(ValueError, match="X:"):
        mlp.apply(params, np.ones((2, 2)))
    with pytest.raises(ValueError, match="X1"):
        mlp.nngp(params, np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="dloss_df"):
        mlp.grads(params, X, np.ones((2, 2)))
    with pytest.raises(ValueError, match="params"):
        mlp.apply(MLP(3, (5,)).init(0), X)
    with pytest.raises(ValueError, match="params"):
        mlp.apply(params[:1], X)
    with pytest.raises(ValueError, match="seed"):
        mlp.init(-1)
    with pytest.raises(ValueError, match="networks"):
        mlp.init(0, networks=0)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(X2=np.ones((2, 4))), ValueError, "X2"),
    (dict(X1=np.array([[np.nan, 1.0, 1.0]])), ValueError, "X1"),
    (dict(depth=1.5), TypeError, "depth"),
    (dict(depth=-1), ValueError, "depth"),
    (dict(width=-3), ValueError, "width"),
    (dict(width=2.5), TypeError, "width"),
    (dict(width=(4, 4)), ValueError, "width"),
    (dict(width=(4, -4), depth=2), ValueError, r"width\[1\]"),
    (dict(networks=0), ValueError, "networks"),
    (dict(chunk=0), ValueError, "chunk"),
    (dict(sigma_w2=-1.0), ValueError, "sigma_w2"),
    (dict(activation="nope"), ValueError, "unknown activation"),
])
def test_empirical_kernels_reject_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        empirical_kernels(**{"X1": np.ones((2, 3)), "width": 4, "networks": 2, **kwargs})


# --- statistics ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_depth_one_ensemble_means_match_the_infinite_width_kernels(activation):
    # At depth 1 the ensemble means are unbiased at any width: E f(x)f(x') = K¹ and E Θ = K¹ + K̇¹ Θ⁰.
    X = np.array([[1.0, 0.5], [-0.3, 0.8], [0.0, 0.0]])
    result = empirical_kernels(X, activation=activation, width=16, networks=3000, seed=1, sigma_w2=1.5, sigma_b2=0.3)
    exact = theory.nngp_ntk(X, activation=activation, depth=1, sigma_w2=1.5, sigma_b2=0.3)
    assert np.all(np.abs(result.nngp_mean - exact.nngp) < 5 * result.nngp_se)
    assert np.all(np.abs(result.ntk_mean - exact.ntk) < 5 * result.ntk_se)


def test_the_feature_kernel_and_the_output_product_estimate_the_same_covariance():
    """MLP.nngp is E[f(x) f(x') | hidden features]; averaged over networks it must agree with f(x) f(x')."""
    X = np.array([[1.0, 0.5, -0.2], [-0.3, 0.8, 0.1], [0.4, 0.4, 0.4]])
    mlp = MLP(3, (8, 8), "tanh", out=2, sigma_w2=1.4, sigma_b2=0.2)
    params = mlp.init(7, networks=4000)
    f = mlp.apply(params, X)
    product = np.einsum("eik,ejk->eij", f, f) / 2
    difference = product - mlp.nngp(params, X)
    z = difference.mean(axis=0) / (difference.std(axis=0, ddof=1) / np.sqrt(len(difference)))
    assert np.all(np.abs(z) < 5), z


def test_other_parameterizations_by_multipliers_and_init_scales():
    """z^l = m_l W^l a + σ_b b with W^l ~ N(0, s_l²): NTK and gradients against the complex step; the standard
    parameterization (m = 1, s = σ_w/√fan_in) computes the same function as the NTK one from the same seed."""
    X = _inputs(5, 4, 3, True)
    widths, multipliers, stds = (5, 4), (0.7, 0.05, 0.3), (1.0, 2.0, 0.1)
    shapes = _shapes(3, widths, 2)
    mlp = MLP(3, widths, "tanh", out=2, sigma_b2=0.4, multipliers=multipliers, init_stds=stds)
    params = mlp.init(2, networks=2)
    ntk = mlp.ntk(params, X)
    dloss = np.random.default_rng(0).standard_normal((2, 4, 2))
    grads = mlp.grads(params, X, dloss)
    for e in range(2):
        J = _oracle_jacobian(_flat(params, e), X, shapes, np.tanh, 1.0, 0.4, multipliers)
        _close(ntk[e], np.einsum("jnk,jmk->nm", J, J) / 2)
        _close(np.concatenate([np.concatenate([dW[e].ravel(), db[e]]) for dW, db in grads]),
               np.einsum("jnk,nk->j", J, dloss[e]))
    standard = MLP(3, widths, "tanh", sigma_w2=1.5, multipliers=(1, 1, 1),
                   init_stds=[np.sqrt(1.5 / n) for n in (3, *widths)])
    ntk_param = MLP(3, widths, "tanh", sigma_w2=1.5)
    np.testing.assert_allclose(standard.apply(standard.init(0, 3), X), ntk_param.apply(ntk_param.init(0, 3), X),
                               rtol=1e-13)
    with pytest.raises(ValueError, match="multipliers"):
        MLP(3, widths, multipliers=(1, 1))
