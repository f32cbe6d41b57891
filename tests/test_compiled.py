"""The compiled C loop of the kernel recursion against the NumPy one: two printings of the same expressions.

``THEORY_CC=none`` selects the NumPy path. Both must agree to rounding on every input the NumPy path is tested on
(zero, identical, antipodal, colinear rows; depth 0; many tiles and their mirror images; rectangular kernels; both
parameterizations), and a missing compiler must fall back to NumPy silently.
"""

import os
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import input_sets
from theory import layer, nngp, nngp_ntk
from theory.kernels import ccode, engine
from theory.activations import activation
from theory.numeric import c_compiler, c_statements
from theory.symbols import q11, q12, q22


COMPILED = ["relu", "erf", "abs", "leaky_relu(1/5)", "gelu", "sin", "identity"]

pytestmark = pytest.mark.skipif(c_compiler() is None, reason="C disabled (THEORY_CC)")


@contextmanager
def compiler(cc):
    old = os.environ.get("THEORY_CC")
    os.environ["THEORY_CC"] = cc
    try:
        yield
    finally:
        if old is None:
            del os.environ["THEORY_CC"]
        else:
            os.environ["THEORY_CC"] = old


def both(*args, **kwargs):
    """(compiled, NumPy) results of nngp_ntk."""
    compiled = nngp_ntk(*args, **kwargs)
    with compiler("none"):
        return compiled, nngp_ntk(*args, **kwargs)


def assert_close(a, b):
    scale = np.max(np.abs(b))
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14 * scale)


@pytest.mark.parametrize("act", COMPILED)
def test_these_activations_compile(act):
    assert ccode._c_layers(activation(act), "ntk", True, c_compiler()) is not None


def test_quadrature_helpers_have_no_c_form():
    tanh = layer("tanh")
    assert c_statements({q11: "a", q12: "b", q22: "c"}, {"k": tanh.nngp}) is None
    assert ccode._c_layers(activation("tanh"), "ntk", True, c_compiler()) is None


@pytest.mark.parametrize("act", COMPILED)
@settings(max_examples=15, deadline=None)
@given(x=input_sets(), depth=st.integers(0, 5), sw=st.floats(0.1, 3.0), sb=st.sampled_from([0.0, 0.05, 1.0]))
def test_compiled_equals_numpy(act, x, depth, sw, sb):
    (K, T), (K0, T0) = both(x, None, act, depth=depth, sigma_w2=sw, sigma_b2=sb)
    assert_close(K, K0)
    assert_close(T, T0)
    np.testing.assert_array_equal(K, K.T)


@pytest.mark.parametrize("act, sb", [("relu", 0.0), ("relu", 0.4), ("erf", 0.2), ("abs", 0.0), ("sin", 0.3)])
def test_many_tiles_rectangles_and_the_standard_parameterization(act, sb, monkeypatch):
    """7×7 tiles: diagonal tiles, mirrored off-diagonal tiles and ragged edges; special rows in different tiles."""
    monkeypatch.setattr(engine, "_TILE", 49)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 5))
    X = np.vstack([x, x[3], 2.5 * x[5], -x[7], np.zeros(5), x[:4] * (1 + 1e-9)])
    Y = np.vstack([rng.standard_normal((9, 5)), X[:4], -X[5]])
    for args, kwargs in [((X, None), {}), ((X, Y), {}), ((Y, X), {}),
                         ((X, None), {"parameterization": "standard", "widths": (7, 3, 11)})]:
        (K, T), (K0, T0) = both(*args, act, depth=3, sigma_w2=1.7, sigma_b2=sb, **kwargs)
        assert_close(K, K0)
        assert_close(T, T0)
    with compiler("none"):
        reference = nngp(X, None, act, depth=3, sigma_w2=1.7, sigma_b2=sb)
    assert_close(nngp(X, None, act, depth=3, sigma_w2=1.7, sigma_b2=sb), reference)


def test_exact_on_the_diagonal_and_colinear_pairs_at_depth_1000():
    """ReLU at σ_w² = 2, no bias: K^L(x, c·x) = K⁰ = 2c |x|²/d at every depth, and Θ^L = (L + 1) K⁰."""
    x = np.random.default_rng(0).standard_normal((1, 16))
    X = np.vstack([x, 3 * x, 0.25 * x])
    K, T = nngp_ntk(X, None, "relu", depth=1000, sigma_w2=2.0)
    k0 = 2 * X @ X.T / 16
    np.testing.assert_allclose(K, k0, rtol=1e-13)
    np.testing.assert_allclose(T, 1001 * k0, rtol=1e-13)


def test_a_missing_or_failing_compiler_falls_back_to_numpy(tmp_path):
    x = np.random.default_rng(1).standard_normal((6, 3))
    with compiler("/nonexistent/cc"):
        assert c_compiler() is None
        K, T = nngp_ntk(x, None, "relu", depth=2, sigma_b2=0.1)
    broken = str(tmp_path / "cc")  # a compiler that exists but fails
    with open(broken, "w") as f:
        f.write("#!/bin/sh\nexit 1\n")
    os.chmod(broken, 0o755)
    with compiler(broken):
        assert ccode._c_layers(activation("relu"), "ntk", True, broken) is None
        np.testing.assert_array_equal(nngp_ntk(x, None, "relu", depth=2, sigma_b2=0.1).ntk, T)
    with compiler("none"):
        K0, T0 = nngp_ntk(x, None, "relu", depth=2, sigma_b2=0.1)
    np.testing.assert_array_equal(K, K0)
    np.testing.assert_array_equal(T, T0)
