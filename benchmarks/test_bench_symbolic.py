"""The symbolic derive-and-lambdify step, from cold caches: the first theory.nngp_ntk call at depth 10 and 100
(8 inputs, so the numerics are negligible) -- derivation, lambdify, and the C compilation of the layer loop into
an empty compiler cache --, and the composed SymPy recursion theory.mlp_kernels(activation, depth).

No baseline: the accuracy column shows the warm (cached) time of the same call, which is what the derivation
costs on top of it."""

import os
import sys
import tempfile
import time

import numpy as np
import pytest
from sympy.core.cache import clear_cache

import theory
from bench_harness import measure

X = np.random.default_rng(0).standard_normal((8, 64))
_COMPILED = tempfile.TemporaryDirectory(prefix="theory-bench-")  # empty compiler caches, removed at exit


def _clear_caches():
    """Empty every functools cache of the modules that derive and lambdify (whatever their names), SymPy's, and
    the compiled C loops' (a new empty directory).

    SymPy's cache must go too: entries left from a previous derivation compare structurally with the new,
    equal-but-not-identical expression trees, which made the depth-100 composition take minutes."""
    for name in ("theory.kernels.maps", "theory.kernels.ccode", "theory.kernels.engine", "theory.numeric", "theory.gaussian", "theory.activations"):
        for value in list(vars(sys.modules[name]).values()):
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
    clear_cache()
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(dir=_COMPILED.name)


def _warm(fn):
    fn()
    start = time.perf_counter()
    fn()
    return f"warm {time.perf_counter() - start:.1e} s"


@pytest.mark.parametrize("depth", [10, 100])
@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_first_nngp_ntk_call(benchmark, activation, depth):
    def run():
        return theory.nngp_ntk(X, None, activation, depth)

    measure(benchmark, f"derive + lambdify + first nngp_ntk {activation} L={depth} (cold caches, N=8)", "ours",
            run, lambda _: _warm(run), memory=False, setup=_clear_caches)


@pytest.mark.parametrize("depth", [10, 100])
def test_symbolic_recursion(benchmark, depth):
    def run():
        return theory.mlp_kernels("relu", depth).ntk

    measure(benchmark, f"symbolic theory.mlp_kernels('relu', {depth}).ntk (cold caches)", "ours", run,
            memory=False, setup=_clear_caches)
