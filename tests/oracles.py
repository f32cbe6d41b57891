"""Independent numerical oracles for the tests. Nothing here imports the package's formulas.

``gaussian_expectation_quadrature`` integrates E[φ(u) ψ(v)] over (u, v) ~ N(0, [[a, c], [c, b]]) directly in 2-D:
u = √a x, v = √b (ρ x + √(1-ρ²) y) with x, y independent standard normals, by double-exponential (tanh-sinh)
quadrature on |x|, |y| <= 12, split at the kinks x = 0 and v = 0 so that step-like activations are integrated
exactly as piecewise-smooth functions. Accuracy ~1e-14 for piecewise-analytic φ, ψ.
"""

import mpmath
import numpy as np

_LIMIT = 12.0


def _tanh_sinh(n=120, t_max=3.3):
    """Nodes and weights of the double-exponential rule on [-1, 1]."""
    t = np.linspace(-t_max, t_max, 2 * n + 1)
    h = t[1] - t[0]
    s = np.pi / 2 * np.sinh(t)
    nodes = np.tanh(s)
    weights = h * np.pi / 2 * np.cosh(t) / np.cosh(s) ** 2
    return nodes, weights


_NODES, _WEIGHTS = _tanh_sinh()


def _pieces(lo, hi):
    """Nodes and weights (broadcast over leading axes of lo, hi) of the rule mapped onto [lo, hi]."""
    lo, hi = np.asarray(lo, dtype=float)[..., None], np.asarray(hi, dtype=float)[..., None]
    half = (hi - lo) / 2
    return lo + half * (1 + _NODES), half * _WEIGHTS


def _density(x):
    return np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)


def gaussian_expectation_quadrature(phi, psi, a, c, b):
    """E[φ(u) ψ(v)] for (u, v) ~ N(0, [[a, c], [c, b]]); φ, ψ vectorized NumPy functions."""
    a, b, c = float(a), float(b), float(c)
    sa, sb = np.sqrt(a), np.sqrt(b)
    if sa * sb == 0:
        rho, r = 0.0, 1.0
    else:  # √(1-ρ²) from the determinant in exact arithmetic: near ρ = ±1 float64 would cancel
        det = mpmath.fsub(mpmath.fmul(a, b, exact=True), mpmath.fmul(c, c, exact=True), exact=True)
        rho = float(np.clip(c / (sa * sb), -1, 1))
        r = float(mpmath.sqrt(max(det, 0)) / mpmath.sqrt(mpmath.fmul(a, b, exact=True)))
    # The kink v = 0 lies inside |y| <= 12 only for |x| < 12 r / |ρ|: split the outer integral there too.
    k = _LIMIT if rho == 0 else min(_LIMIT, _LIMIT * r / abs(rho))
    total = 0.0
    for lo, hi in ((-_LIMIT, -k), (-k, 0.0), (0.0, k), (k, _LIMIT)):
        if lo == hi:
            continue
        x, wx = _pieces(lo, hi)
        if r == 0:
            total += np.sum(wx * _density(x) * phi(sa * x) * psi(sb * rho * x))
            continue
        y_kink = np.clip(-rho * x / r, -_LIMIT, _LIMIT)  # where v changes sign
        inner = 0.0
        for ylo, yhi in ((np.full_like(x, -_LIMIT), y_kink), (y_kink, np.full_like(x, _LIMIT))):
            y, wy = _pieces(ylo, yhi)  # shape (len(x), nodes)
            inner = inner + np.sum(wy * _density(y) * psi(sb * (rho * x[..., None] + r * y)), axis=-1)
        total += np.sum(wx * _density(x) * phi(sa * x) * inner)
    return float(total)
