"""theory.nngp_ntk(X, None, ...) against the plain NumPy loop and neural-tangents' analytic kernel, d = 64."""

import time
from functools import lru_cache

import numpy as np
import pytest

import theory
from bench_harness import guard, measure
from bench_reference import (BASELINE_LAYERS, NT_ACTIVATIONS, SIGMA_B2, SIGMA_W2, colinear_error, diag_error, nt,
                             nt_kernel, numpy_loop)

D = 64
SIZES = [(1000, 3), (2000, 3), (4000, 3), (2000, 10), (2000, 30)]
PILOTS = (64, 256)  # pilot runs of K(X, X) at depth 1: t(N) = a + b N^2 from these two sizes, times L


def _inputs(n):
    return np.random.default_rng(0).standard_normal((n, D))


def _ours(activation, depth, sigma_b2=SIGMA_B2):
    def run(X):
        k = theory.nngp_ntk(X, None, activation, depth, SIGMA_W2, sigma_b2)
        return k.nngp, k.ntk

    return run


def _baseline(activation, depth, sigma_b2=SIGMA_B2):
    return lambda X: numpy_loop(X, activation, depth, SIGMA_W2, sigma_b2)


def _nt(activation, depth, sigma_b2=SIGMA_B2):
    return nt_kernel(activation, depth, SIGMA_W2, sigma_b2)


FACTORIES = {"ours": _ours, "baseline": _baseline, "nt": _nt}


@lru_cache(maxsize=None)
def _pilot(implementation, activation):
    """The seconds of one depth-1 call at the two pilot sizes (after a call that compiles / fills caches)."""
    run = FACTORIES[implementation](activation, 1)
    seconds = []
    for n in PILOTS:
        X = _inputs(n)
        run(X)
        start = time.perf_counter()
        run(X)
        seconds.append(time.perf_counter() - start)
    return tuple(seconds)


def _estimate(implementation, activation, n, depth):
    """Estimated seconds of the case: the pilot's per-pair cost extrapolated to n^2 pairs and depth layers."""
    (n0, n1), (t0, t1) = PILOTS, _pilot(implementation, activation)
    per_pair = max(t1 - t0, 0.0) / (n1**2 - n0**2)
    return (t1 + per_pair * (n**2 - n1**2)) * depth


@lru_cache(maxsize=None)
def _colinear(implementation, activation, depth):
    return colinear_error(FACTORIES[implementation](activation, depth, 0.0), activation, depth, SIGMA_W2)


@pytest.mark.parametrize("implementation", ["ours", "baseline", "nt"])
@pytest.mark.parametrize("n,depth", SIZES, ids=[f"N{n}-L{l}" for n, l in SIZES])
@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_nngp_ntk(benchmark, activation, n, depth, implementation):
    case = f"nngp_ntk {activation} N={n} L={depth}"
    if implementation == "baseline" and activation not in BASELINE_LAYERS:
        pytest.skip(f"no closed-form NumPy baseline for {activation}")
    if implementation == "nt" and (nt is None or activation not in NT_ACTIVATIONS):
        pytest.skip("neural-tangents is not installed" if nt is None else f"no analytic {activation} in nt")
    error = _colinear(implementation, activation, depth)
    colinear = "colinear n/a" if error is None else f"colinear {error:.1e}"
    guard(case, implementation, _estimate(implementation, activation, n, depth), colinear)
    X = _inputs(n)
    run = FACTORIES[implementation](activation, depth)
    if implementation == "ours":
        run(X[:8])  # derive and lambdify outside the timing (timed in test_bench_symbolic)

    def accuracy(result):
        return f"diag {diag_error(X, activation, depth, *result):.1e}, {colinear}"

    measure(benchmark, case, implementation, lambda: run(X), accuracy, memory=implementation != "nt")
