"""theory.layers: each layer's kernel map against an independent oracle (2-D quadrature, closed forms written here
from the literature, direct sums over positions), finite networks against their own finite-difference Jacobian,
a small Monte-Carlo agreement, the MLP form against theory.nngp_ntk, bad specs, and (opt-in) neural-tangents."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import theory
from oracles import gaussian_expectation_quadrature
from theory.layers import (AvgPool, Conv, Dense, Erf, Flatten, Gelu, GlobalAvgPool, LayerNorm, Relu, Residual, Tanh,
                           serial)
from theory.layers.network import _kernel

RNG = np.random.default_rng(14)


def _arccos(q11, q12, q22):
    """E[relu(u) relu(v)] and E[step(u) step(v)] (Cho & Saul 2009); ρ = 0 where a variance is 0."""
    norm = np.sqrt(q11 * q22)
    th = np.arccos(np.clip(np.divide(q12, norm, out=np.zeros_like(norm), where=norm > 0), -1, 1))
    return np.sqrt(q11 * q22) / (2 * np.pi) * (np.sin(th) + (np.pi - th) * np.cos(th)), (np.pi - th) / (2 * np.pi)


def test_the_mlp_form_gives_theory_nngp_ntk_bit_for_bit_and_the_generic_engine_to_rounding():
    X = RNG.standard_normal((7, 5))
    net = serial(Dense(2.0, 0.1), *[layer for _ in range(3) for layer in (Relu(), Dense(2.0, 0.1))])
    K, T = net.nngp_ntk(X)
    K0, T0 = theory.nngp_ntk(X, activation="relu", depth=3, sigma_w2=2.0, sigma_b2=0.1)
    assert np.array_equal(K, K0) and np.array_equal(T, T0)
    K1, T1 = _kernel(net.layers, X, None)
    np.testing.assert_allclose(K1, K0, rtol=1e-13)
    np.testing.assert_allclose(T1, T0, rtol=1e-13)
    K2, T2 = net.nngp_ntk(X[:3], X[2:])
    np.testing.assert_array_equal(K2, theory.nngp_ntk(X[:3], X[2:], "relu", 3, 2.0, 0.1).nngp)


def test_an_activation_layer_is_the_quadrature_of_its_gaussian_expectation():
    X = RNG.standard_normal((3, 4))
    sw, sb, sw2, sb2 = 1.3, 0.2, 0.7, 0.1
    K, T = serial(Dense(sw, sb), Tanh(), Dense(sw2, sb2)).nngp_ntk(X)
    g = X @ X.T / 4
    k1 = sb + sw * g
    dt = lambda u: 1 / np.cosh(u) ** 2
    for i, j in itertools.product(range(3), repeat=2):
        a, c, b = k1[i, i], k1[i, j], k1[j, j]
        k2 = sb2 + sw2 * gaussian_expectation_quadrature(np.tanh, np.tanh, a, c, b)
        t2 = k2 + sw2 * gaussian_expectation_quadrature(dt, dt, a, c, b) * k1[i, j]
        assert K[i, j] == pytest.approx(k2, rel=1e-12) and T[i, j] == pytest.approx(t2, rel=1e-12)


def test_layernorm_is_the_correlation_and_a_residual_adds_the_branch_kernel():
    X = RNG.standard_normal((4, 3)) * np.array([[0.5], [1.0], [2.0], [0.0]])  # a zero input too
    K, T = serial(Dense(1.5, 0.2), LayerNorm(), Dense(1.0, None)).nngp_ntk(X)
    k = 0.2 + 1.5 * X @ X.T / 3
    rho = k / np.sqrt(np.outer(np.diag(k), np.diag(k)))
    np.testing.assert_allclose(K, rho, rtol=1e-14)
    np.testing.assert_allclose(T, 2 * rho, rtol=1e-14)  # Θ' = K' + σ_w² Θ_LN, Θ_LN = Θ/√(K11 K22) = ρ

    alpha, sw2, sb2 = 0.6, 2.0, 0.3
    K, T = serial(Dense(), Residual(Relu(), Dense(sw2, sb2), alpha=alpha), Dense()).nngp_ntk(X)
    g = X @ X.T / 3
    e, edot = _arccos(np.diag(g)[:, None], g, np.diag(g)[None, :])
    branch_k = sb2 + sw2 * e
    res_k = g + alpha**2 * branch_k
    res_t = g + alpha**2 * (branch_k + sw2 * edot * g)
    np.testing.assert_allclose(K, res_k, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(T, res_k + res_t, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv_and_pooling_are_the_direct_sums_over_positions(padding):
    X = RNG.standard_normal((3, 6, 2))
    sw, sb = 1.7, 0.3
    K, T = serial(Conv((3,), padding, sw, sb), AvgPool((2,), strides=(2,)), GlobalAvgPool(), Dense(1.0, 0.0)) \
        .nngp_ntk(X)
    pad = np.pad(X, [(0, 0), (1, 1), (0, 0)]) if padding == "SAME" else X
    P = pad.shape[1] - 2
    conv = np.array([[[[sb + sw * np.mean([pad[i, p + o] @ pad[j, q + o] / 2 for o in range(3)])
                        for q in range(P)] for p in range(P)] for j in range(3)] for i in range(3)])
    Q = (P - 2) // 2 + 1
    pool = np.array([[[[np.mean([conv[i, j, 2 * p + a, 2 * q + b] for a in range(2) for b in range(2)])
                        for q in range(Q)] for p in range(Q)] for j in range(3)] for i in range(3)])
    gap = pool.mean(axis=(2, 3))
    np.testing.assert_allclose(K, gap, rtol=1e-13)
    np.testing.assert_allclose(T, 2 * gap, rtol=1e-13)  # linear network: Θ = K + σ_w² Θ_conv, Θ_conv = K_conv


def test_flatten_keeps_the_positions_diagonal_and_a_2d_conv_matches_the_sum():
    X = RNG.standard_normal((2, 4, 3, 2))
    K, _ = serial(Conv((3, 2), "SAME", 1.0, None), Flatten(), Dense()).nngp_ntk(X)
    pad = np.pad(X, [(0, 0), (1, 1), (0, 1), (0, 0)])
    direct = np.array([[np.mean([np.mean([pad[i, h + a, w + b] @ pad[j, h + a, w + b] / 2
                                          for a in range(3) for b in range(2)]) for h in range(4) for w in range(3)])
                        for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(K, direct, rtol=1e-13)


def _finite_difference_ntk(fn, params, X, h=1e-6):
    """Θ = J J^T from central differences of the outputs in every parameter entry (one network)."""
    rows = []
    for arrays in params:
        for a in arrays:
            for idx in np.ndindex(a.shape):
                old = a[idx]
                a[idx] = old + h
                up = fn.apply(params, X)[0, :, 0]
                a[idx] = old - h
                down = fn.apply(params, X)[0, :, 0]
                a[idx] = old
                rows.append((up - down) / (2 * h))
    J = np.array(rows).T
    return J @ J.T, J


@pytest.mark.parametrize("net, shape", [
    (serial(Conv((3,), "SAME", 1.5, 0.2), Erf(), Residual(Conv((2,), "SAME", 1.0, None), LayerNorm(), Tanh(),
                                                        Conv((3,), "SAME", 1.2, 0.1), alpha=0.7),
            AvgPool((2,)), Flatten(), Dense(1.0, 0.1)), (5, 2)),
    (serial(Conv((2, 2), "VALID", 1.0, 0.1), Gelu(), GlobalAvgPool(), Dense(2.0, 0.3), Erf(), Dense()), (3, 3, 2)),
])
def test_the_finite_networks_ntk_is_its_jacobians_gram_matrix(net, shape):
    fn = net.network(width=3)
    X = RNG.standard_normal((4, *shape))
    params = [[a[:1].copy() for a in arrays] for arrays in fn.init(7, 2, shape)]
    exact, J = _finite_difference_ntk(fn, params, X)
    np.testing.assert_allclose(fn.ntk(params, X)[0], exact, rtol=1e-7, atol=1e-9)
    dloss = RNG.standard_normal((1, 4, 1))
    flat = np.concatenate([g.ravel() for grads in fn.grads(params, X, dloss) for g in grads])
    np.testing.assert_allclose(flat, J.T @ dloss[0, :, 0], rtol=1e-7, atol=1e-9)


def test_finite_cnns_average_to_the_infinite_width_kernel():
    """Width 128, 40 networks: every entry within 5 SE plus the O(1/n) bias bound 2 (L - 1)/n √(K_ii K_jj)."""
    X = RNG.standard_normal((4, 6, 2))
    net = serial(Conv((3,), "SAME", 2.0, 0.1), Relu(), Conv((3,), "SAME", 2.0, 0.1), Relu(), GlobalAvgPool(),
                 Dense(1.0, 0.0))
    K, T = net.nngp_ntk(X)
    mc = net.network(128).empirical_kernels(X, networks=40, seed=3)
    for exact, mean, se in ((K, mc.nngp_mean, mc.nngp_se), (T, mc.ntk_mean, mc.ntk_se)):
        bias = 2 * (2 - 1) / 128 * np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
        assert np.all(np.abs(mean - exact) <= 5 * se + bias)
        assert not np.all(np.abs(mean - 1.1 * exact) <= 5 * se + bias)  # the kernel off by 10 % is rejected


def test_the_symbolic_system_composes_to_the_numbers():
    net = serial(Dense(1.5, 0.1), Erf(), Dense(), Residual(Erf(), Dense(1.0, 0.2)), Dense())
    system = net.kernels
    assert system._repr_latex_().startswith("$\\displaystyle \\begin{aligned}")
    x = np.array([[0.3, -1.2], [0.8, 0.5]])
    K, T = net.nngp_ntk(x)
    g = {theory.symbols.g11: x[0] @ x[0] / 2, theory.symbols.g12: x[0] @ x[1] / 2, theory.symbols.g22: x[1] @ x[1] / 2}
    assert float(system.nngp.subs(g).evalf(30)) == pytest.approx(K[0, 1], rel=1e-13)
    assert float(system.ntk.subs(g).evalf(30)) == pytest.approx(T[0, 1], rel=1e-13)
    conv = serial(Conv((3,)), Relu(), AvgPool((2,)), Flatten(), Dense()).kernels
    assert "mathcal{C}_{3}" in conv.latex() and "mathcal{P}_{2}" in conv.latex()


@pytest.mark.parametrize("make, X, message", [
    (lambda: serial(Conv((3,)), Relu(), Flatten(), Dense()), np.ones((2, 4)), "input is a vector"),
    (lambda: serial(Conv((3,)), Flatten(), Flatten(), Dense()), np.ones((2, 4, 1)), "Flatten twice"),
    (lambda: serial(LayerNorm(), Dense()), None, "no Dense or Conv before it"),
    (lambda: serial(Dense(), Residual(Relu(), Dense(), Flatten())), np.ones((2, 4, 1)), "must match"),
    (lambda: serial(Dense(), Residual(Relu())), np.ones((2, 3)), "neither the branch"),
    (lambda: serial(Conv((3, 3)), Relu(), Dense()), np.ones((2, 4, 4, 1)), "end it with Flatten"),
    (lambda: serial(Conv((3, 3)), Relu(), Flatten(), Dense()), np.ones((2, 4, 1)), "2-D kernel on 1-D"),
    (lambda: serial(Conv((5,), "VALID"), Flatten(), Dense()), np.ones((2, 4, 1)), "larger than"),
    (lambda: serial(Dense(), Relu), None, "are called"),
    (lambda: serial(Dense(sigma_w2=-1.0)), None, "sigma_w2"),
])
def test_bad_specs_name_the_layer_and_the_problem(make, X, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make().nngp_ntk(X)


def test_the_kernels_agree_with_neural_tangents():
    """Opt-in: neural-tangents' analytic kernels, to 1e-10 relative (1e-11 for LayerNorm, whose ε = 1e-12 enters).

    Runs in this interpreter when neural_tangents imports, else with the interpreter named by THEORY_NT_PYTHON
    (e.g. a separate venv with neural-tangents 0.6.5, jax 0.4.23); skipped otherwise."""
    python = sys.executable
    try:
        import neural_tangents  # noqa: F401
    except ImportError:
        python = os.environ.get("THEORY_NT_PYTHON")
        if not python:
            pytest.skip("neural_tangents is not importable and THEORY_NT_PYTHON is not set")
    from nt_reference import NETS, inputs
    reference = Path(__file__).with_name("nt_reference.py")
    out = subprocess.run([python, str(reference)], capture_output=True, text=True, check=True).stdout
    values = np.load(out.strip().splitlines()[-1])
    for name, (net, kind) in NETS.items():
        K, T = net().nngp_ntk(inputs()[kind])
        np.testing.assert_allclose(K, values[f"{name}_nngp"], rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(T, values[f"{name}_ntk"], rtol=1e-10, atol=1e-12, err_msg=name)


def test_a_spec_declares_the_same_network():
    from theory.layers.spec import parse

    X = RNG.standard_normal((3, 6, 2))
    spec = parse("Conv(3, VALID, 2, 0.1) Residual(Relu Conv(3, SAME, 1, none); 0.5) Relu AvgPool(2) Flatten Dense(1.5)")
    net = serial(Conv((3,), "VALID", 2.0, 0.1), Residual(Relu(), Conv((3,), "SAME", 1.0, None), alpha=0.5), Relu(),
                 AvgPool((2,)), Flatten(), Dense(1.5))
    for a, b in zip(spec.nngp_ntk(X), net.nngp_ntk(X)):
        np.testing.assert_array_equal(a, b)
    for bad, message in (("Dense Foo", "unknown layer 'Foo'"), ("Dense(1, 2, 3)", "Dense: takes"),
                         ("Conv(3y3) Relu", "Conv: expected a size"), ("Dense Residual(Relu Dense", "unbalanced"),
                         ("", "network spec")):
        with pytest.raises(ValueError, match=message):
            parse(bad)
