"""Hypothesis strategies shared by the tests, as small builder functions."""

import numpy as np
from hypothesis import strategies as st


def correlations():
    """ρ in [-1 + 1e-12, 1 - 1e-12], with values within 1e-12 .. 1e-10 of ±1 drawn often.

    Closer to ±1 than 1e-12 (but not exactly ±1), a covariance given in floating point does not determine the
    kernel to 1e-10: dθ/dρ ~ 1/√(1-ρ), so the 1e-16 rounding of q12 moves the answer by up to ~1e-8.
    """
    near = st.sampled_from([1e-12, 1e-11, 1e-10]).flatmap(lambda e: st.sampled_from([1 - e, -1 + e]))
    return st.one_of(st.just(0.0), near, st.floats(-1 + 1e-12, 1 - 1e-12))


def variances(lo=1e-2, hi=10.0):
    return st.floats(np.log(lo), np.log(hi)).map(np.exp)


@st.composite
def covariances(draw, lo=1e-2, hi=10.0):
    """(q11, q12, q22) of a 2x2 covariance matrix.

    ρ = ±1 exactly is drawn as (s², ±st, t²) with s, t multiples of 1/16, so that the matrix is exactly singular
    in floating point too (for a generic float ρ = ±1, rounding makes the matrix slightly non-singular, and the
    kernel's infinite condition number at ρ = ±1 turns that 1e-16 into 1e-8).
    """
    if draw(st.booleans()):
        s, t = (draw(st.integers(int(np.ceil(16 * np.sqrt(lo))), int(16 * np.sqrt(hi)))) / 16 for _ in range(2))
        return s * s, draw(st.sampled_from([-1, 1])) * s * t, t * t
    a, b = draw(variances(lo, hi)), draw(variances(lo, hi))
    return a, draw(correlations()) * np.sqrt(a * b), b


@st.composite
def input_sets(draw, max_n=6, max_d=4):
    """An (N, d) input matrix with some zero, repeated, antipodal and rescaled rows."""
    n, d = draw(st.integers(1, max_n)), draw(st.integers(1, max_d))
    seed = draw(st.integers(0, 2**31 - 1))
    x = np.random.default_rng(seed).standard_normal((n, d))
    for i in range(1, n):
        kind = draw(st.sampled_from(["fresh", "fresh", "zero", "same", "antipodal", "scaled"]))
        j = draw(st.integers(0, i - 1))
        if kind == "zero":
            x[i] = 0
        elif kind == "same":
            x[i] = x[j]
        elif kind == "antipodal":
            x[i] = -x[j]
        elif kind == "scaled":
            x[i] = 2.5 * x[j]
    return x
