"""Forward sampling by Gaussian conditioning has the same law as the full network."""

import numpy as np
import pytest

import theory
from theory.montecarlo import MLP, layer_kernels


def test_layer_kernels_have_the_law_of_the_full_network():
    X = np.array([[1.0, 0.5, -0.2], [-0.3, 0.8, 0.1], [0.0, 0.0, 0.0]])
    sampled = layer_kernels(X, "tanh", depth=2, width=(6, 5), networks=4000, seed=3, sigma_w2=1.7, sigma_b2=0.2)[:, -1]
    mlp = MLP(3, (6, 5), "tanh", sigma_w2=1.7, sigma_b2=0.2)
    full = mlp.nngp(mlp.init(4, networks=4000), X)
    for stat in (lambda k: k, lambda k: k**2):  # first and second moments of every entry
        a, b = stat(sampled), stat(full)
        se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
        assert np.all(np.abs(a.mean(0) - b.mean(0)) <= 5 * se + 1e-15)


def test_layer_kernels_start_from_the_input_kernel_and_match_the_nngp_at_depth_one():
    X = np.array([[1.0, 0.5], [0.2, -1.0]])
    K = layer_kernels(X, "relu", depth=1, width=64, networks=3000, seed=0, sigma_w2=2.0, sigma_b2=0.1)
    np.testing.assert_allclose(K[:, 0], np.broadcast_to(0.1 + 2.0 * X @ X.T / 2, (3000, 2, 2)))
    mean, se = K[:, 1].mean(0), K[:, 1].std(0, ddof=1) / np.sqrt(3000)
    assert np.all(np.abs(mean - theory.nngp(X, None, "relu", 1, sigma_w2=2.0, sigma_b2=0.1)) <= 5 * se)


def test_layer_kernels_do_not_depend_on_chunking_and_handle_degenerate_inputs():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    a = layer_kernels(X, "erf", depth=2, width=7, networks=5, seed=1, chunk=2)
    b = layer_kernels(X, "erf", depth=2, width=7, networks=5, seed=1)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.all(a[:, 2, 2, 2] == 0.0)  # zero input, no bias: zero pre-activations


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(depth=-1), ValueError, "depth"),
    (dict(width=0), ValueError, "width"),
    (dict(networks=0), ValueError, "networks"),
    (dict(sigma_b2=-1.0), ValueError, "sigma_b2"),
    (dict(X=np.ones(3)), ValueError, "X"),
])
def test_layer_kernels_reject_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        layer_kernels(**{"X": np.ones((2, 3)), "width": 4, "networks": 2, **kwargs})
