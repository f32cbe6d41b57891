"""theory.layers and small problems: the warm per-call cost of theory.nngp_ntk at N = 20 and 100 (what a loop of
hyperparameter or marginal-likelihood evaluations pays) and a 2-D CNN's kernel, against neural-tangents' jit-compiled
analytic kernel_fn in the same run."""

import timeit

import numpy as np
import pytest

import theory
from bench_harness import measure, record
from bench_reference import NT_ACTIVATIONS, SIGMA_B2, SIGMA_W2, nt, nt_kernel
from theory.layers import Conv, Dense, Flatten, Relu, serial

D = 64
DEPTH = 3
_ours_cnn = {}


def _per_call(fn, repeat=5, seconds=0.2):
    """The fastest per-call time over ``repeat`` batches of ~``seconds`` each (after a warm-up call)."""
    fn()
    once = timeit.timeit(fn, number=1)
    number = max(1, int(seconds / max(once, 1e-6)))
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


@pytest.mark.parametrize("implementation", ["ours", "nt"])
@pytest.mark.parametrize("n", [20, 100])
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_warm_call(activation, n, implementation):
    case = f"nngp_ntk {activation} N={n} L={DEPTH}, warm, per call"
    X = np.random.default_rng(0).standard_normal((n, D))
    if implementation == "nt":
        if nt is None or activation not in NT_ACTIVATIONS:
            pytest.skip("neural-tangents is not installed")
        run = nt_kernel(activation, DEPTH)
        record(case, "nt", _per_call(lambda: run(X)))
    else:
        record(case, "ours", _per_call(lambda: theory.nngp_ntk(X, None, activation, DEPTH, SIGMA_W2, SIGMA_B2)))


def _cnn_layers(conv, relu, top, dense):
    return [layer for _ in range(4) for layer in (conv(), relu())] + [top(), dense()]


CNN_CASE = "2-D CNN N=200 8×8×3: 4×(Conv 3×3 SAME σ_w²=2 σ_b²=0.1, ReLU), Flatten, Dense"


@pytest.mark.parametrize("implementation", ["ours", "nt"])
def test_cnn(benchmark, implementation):
    X = np.random.default_rng(0).standard_normal((200, 8, 8, 3))
    if implementation == "ours":
        net = serial(*_cnn_layers(lambda: Conv((3, 3), "SAME", 2.0, 0.1), Relu, Flatten, Dense))
        net.nngp_ntk(X[:4])  # derive and lambdify outside the timing
        _ours_cnn["K"] = measure(benchmark, CNN_CASE, "ours", lambda: net.nngp_ntk(X))
        return
    if nt is None:
        pytest.skip("neural-tangents is not installed")
    import jax
    from neural_tangents import stax

    kernel_fn = jax.jit(stax.serial(*_cnn_layers(
        lambda: stax.Conv(1, (3, 3), padding="SAME", W_std=np.sqrt(2.0), b_std=np.sqrt(0.1)), stax.Relu,
        stax.Flatten, lambda: stax.Dense(1)))[2], static_argnames="get")

    def run():
        k = kernel_fn(X, None, ("nngp", "ntk"))
        return np.asarray(k[0]), np.asarray(k[1])

    def accuracy(result):
        if "K" not in _ours_cnn:
            return ""
        ours = _ours_cnn["K"]
        return "vs ours: NNGP {:.1e}, NTK {:.1e} (max |Δ| / max)".format(
            *(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(result, ours)))

    measure(benchmark, CNN_CASE, "nt", run, accuracy, memory=False)
