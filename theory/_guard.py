r"""Guards around the numeric kernel recursion (:func:`theory.kernels.nngp_ntk`, :func:`theory.kernels.nngp`).

:func:`guarded` wraps the recursion ``(X1, X2, activation, depth, sigma_w2, sigma_b2, with_ntk, parameterization,
widths) -> Kernel`` and adds what does not depend on how the layers are computed:

* activations whose Gaussian moments E[φ(u)²], E[φ'(u)²] diverge (a pole such as 1/z, a singularity on the real
  line, growth like exp(z²/4)) are rejected with a ValueError;
* the depth is at most :data:`MAX_DEPTH`;
* the layer map's derivation for a user expression (not a registered activation, whose derivations are tested)
  gets a CPU-time budget (:mod:`theory._budget`): past it, the activation is marked
  :class:`theory.gaussian.Numeric` and the quadrature path runs, with a one-line note on stderr;
* inputs of any norm: a positively homogeneous activation of degree k, φ(cz) = c^k φ(z) for c > 0 (relu, leaky
  relu, abs, step, sign, identity, monomials), gives K^L(αx, βx') = (αβ)^(k^L) K^L(x, x') without bias in the NTK
  parameterization (and so does Θ^L: K̇ scales as (αβ)^((k-1)k^(l-1)) and Θ^(l-1) as (αβ)^(k^(l-1))). Such inputs
  are scaled by powers of two to norm ~√d, which is exact, and the factor is restored by ``ldexp``: the answer is
  exact while it is representable, and ``inf`` (with a RuntimeWarning) only where the true value overflows float64.
  For every other case a layer-0 variance σ_w²|x|²/d + σ_b² above :data:`LARGEST_VARIANCE` raises a ValueError
  naming the input scale (products of kernel entries would overflow);
* a NaN in the result raises a ValueError instead of being returned.
"""

import functools
import sys
import warnings

import numpy as np
import sympy as sp

from . import _validate
from ._budget import OverBudget, budget
from .activations import Activation, names
from .symbols import z

__all__ = ["guarded", "checked_depth", "degree", "MAX_DEPTH", "LARGEST_VARIANCE", "QUADRATURE_VARIANCE"]

#: The deepest recursion ``nngp_ntk`` computes: its cost is linear in the depth (relu: ~40 µs a layer for 20
#: inputs; tanh, by quadrature: ~2 ms), and deep kernels have long reached their fixed point or power law.
MAX_DEPTH = 10_000
#: The largest layer-0 variance σ_w²|x|²/d + σ_b² computed directly (the bound of σ_w², σ_b² themselves).
LARGEST_VARIANCE = 1e100
#: ... and for activations on the quadrature path (tanh, sigmoid, softplus, swish, user expressions): the trapezoidal
#: rule is within 1e-12 up to variance 10³ (measured for tanh: 6e-6 relative at 10⁴, 3e-3 at 10⁶; softplus's
#: exp(z) overflows beyond ~10⁵), so larger inputs are refused rather than answered inaccurately.
QUADRATURE_VARIANCE = 1e3


def _reals_singular(expr):
    """The real points where ``expr`` (Dirac deltas dropped) is singular, as a list (empty when none found)."""
    expr = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    try:
        with budget(2.0):
            points = sp.singularities(expr, z, sp.S.Reals)
    except (OverBudget, NotImplementedError, ValueError, TypeError):
        return []
    return sorted(points, key=sp.default_sort_key) if isinstance(points, sp.FiniteSet) else []


def _grows_too_fast(expr):
    """Whether φ(z)² e^{-z²/2} fails to decay as |z| grows (from 25 to 35), i.e. E[φ(u)²] diverges at unit variance
    (e.g. exp(z²/4)); a numeric look at the tails, where SymPy's limits take seconds."""
    from .numeric import lambdify

    expr = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    try:
        f = lambdify([z], expr)
        with np.errstate(all="ignore"):
            points = np.array([25.0, 35.0, -25.0, -35.0])
            values = np.abs(np.asarray(f(points), dtype=np.float64))
    except Exception:  # noqa: BLE001 -- no numeric form: leave it to the quadrature
        return False
    if np.isinf(values).any():
        return True
    with np.errstate(divide="ignore"):
        psi = 2 * np.log(values) - points**2 / 2  # log of φ² e^{-z²/2}
    return bool(np.any((psi[1::2] > psi[::2] - 10) & np.isfinite(psi[1::2])))


@functools.lru_cache(maxsize=128)
def _divergent_moment(expr, with_ntk):
    """None, or why E[φ(u)²] (or, with the NTK, E[φ'(u)²]) is infinite."""
    derivative = Activation(expr).derivative
    for f, moment in ((expr, "E[φ(u)²]"), (derivative, "E[φ'(u)²]"))[:2 if with_ntk else 1]:
        points = _reals_singular(f)
        if points:
            where = ", ".join(str(p) for p in points)
            return f"{'φ' if f is expr else 'φ′'} is singular at z = {where}, so {moment} diverges"
        if _grows_too_fast(f):
            return f"{'φ' if f is expr else 'φ′'} grows like exp(z²/4) or faster, so {moment} diverges"
    return None


@functools.lru_cache(maxsize=128)
def degree(expr):
    """k if φ(cz) = c^k φ(z) for every c > 0 (k >= 0 a number; e.g. 1 for relu, 0 for step, 3 for z³), else None."""
    c, t = sp.Dummy("c", positive=True), sp.Dummy("t", positive=True)
    found = set()
    try:
        with budget(2.0):
            for side in (t, -t):
                base = sp.simplify(expr.xreplace({z: side}))
                scaled = sp.simplify(expr.xreplace({z: c * side}))
                if base == 0:
                    if scaled != 0:
                        return None
                    continue
                ratio = sp.simplify(scaled / base)
                if ratio.has(t):
                    return None
                k = sp.S.Zero if ratio == 1 else sp.S.One if ratio == c else \
                    ratio.exp if ratio.is_Pow and ratio.base == c and ratio.exp.is_number else None
                if k is None or not k.is_real or k.is_negative:
                    return None
                found.add(k)
    except (OverBudget, NotImplementedError, ValueError, TypeError, AttributeError):
        return None
    if len(found) != 1:
        return None
    k = found.pop()
    if k > 0 and sp.sympify(expr.xreplace({z: 0})) != 0:
        return None
    return k


_NUMERIC = {}  # (expr, mode, bias) -> the Numeric activation, for derivations that exceeded the budget


def _derivable(act, mode, bias):
    """``act`` if its layer map derives within the budget (caching it), else its :class:`Numeric` form."""
    from .gaussian import Numeric
    from .kernels.maps import _step

    key = (act.expr, mode, bias)
    if key in _NUMERIC:
        return _NUMERIC[key]
    if act.name.split("(")[0] in names():  # a registered activation: its derivation is known to finish (tested)
        return act
    try:
        with budget():  # the derivation and its NumPy printing (the C build, if any, is not limited)
            _step(act, mode, bias)
        return act
    except OverBudget:
        _NUMERIC[key] = numeric = Activation(Numeric(act.expr), name=act.name)
        print(f"theory: the layer map of {act.name} has no closed form within the symbolic budget; using the "
              "quadrature path (Mehler's series, or the trapezoidal rule)", file=sys.stderr)
        return numeric


def _exponents(X):
    """Per row: e with |x| 2^-e in [1/2, 1) (0 for zero rows), from a norm computed without overflow."""
    top = np.max(np.abs(X), axis=1)
    safe = np.where(top > 0, top, 1.0)
    norm = top * np.linalg.norm(X / safe[:, None], axis=1)
    return np.where(top > 0, np.frexp(norm)[1], 0)


def _scaled(X, e, d):
    """X with row i multiplied by 2^(-e_i) sqrt-d-normalized: exact (a power of two), so that |x|²/d ~ 1."""
    shift = np.where(np.any(X != 0, axis=1), e - int(np.ceil(np.log2(np.sqrt(d)))), 0)
    return np.ldexp(X, -shift[:, None]), shift


def _restore(value, shift1, shift2, power):
    """value_ij · 2^((s_i + s_j) power), exactly; inf (with a warning) where the true value overflows."""
    if value is None:
        return None
    total = (shift1[:, None] + shift2[None, :]).astype(float) * float(power)
    with np.errstate(over="ignore", under="ignore"):
        if float(power).is_integer():
            out = np.ldexp(value, np.clip(total, -5000, 5000).astype(np.int64))
        else:
            out = value * np.exp2(total)
    overflow = np.count_nonzero(np.isinf(out) & np.isfinite(value))
    if overflow:
        warnings.warn(f"{overflow} kernel entries exceed float64 (the kernel scales as (|x| |x'|)^{float(power):g}): "
                      "returned as inf", RuntimeWarning, stacklevel=4)
    return out


def _largest_variance(X, sw, sb, name, act, why, largest=LARGEST_VARIANCE):
    """Raise a ValueError naming the input scale when σ_w²|x|²/d + σ_b² exceeds ``largest``."""
    with np.errstate(over="ignore"):  # the common case in one pass: |x|² overflows only where the bound fails
        if sb + sw * np.max(np.einsum("ij,ij->i", X, X), initial=0.0) / X.shape[1] <= largest:
            return
    e = _exponents(X)
    top = np.max(np.abs(X), axis=1)
    with np.errstate(over="ignore"):
        g = (top * np.linalg.norm(X / np.where(top > 0, top, 1.0)[:, None], axis=1)) ** 2 / X.shape[1]
        variance = sb + sw * g
    if np.any(variance > largest):
        i = int(np.argmax(variance))
        raise ValueError(f"{name}: row {i} has |x|²/d = {g[i]:.3g} (norm ~2^{e[i]}); for {act.name} {why} the "
                         f"kernel is computed only where σ_w²|x|²/d + σ_b² <= {largest:g} ("
                         + ("the accuracy of its quadrature" if largest == QUADRATURE_VARIANCE else
                            "products of kernel entries must stay within float64") + "): rescale the inputs")


def _quadrature(act):
    """Whether the layer map of ``act`` takes the quadrature path (an unevaluated Gaussian expectation)."""
    from .gaussian import GaussianExpectation
    from .kernels import layer

    return any(e.has(GaussianExpectation) for e in layer(act))


def checked_depth(depth):
    """``depth`` as an int in 0..:data:`MAX_DEPTH`, or a ValueError/TypeError naming it."""
    depth = _validate.count(depth, "depth")
    if depth > MAX_DEPTH:
        raise ValueError(f"depth: expected an integer <= {MAX_DEPTH} (the cost is linear in the depth, and "
                         f"kernels reach their fixed point or power law long before), got {depth}")
    return depth


@functools.lru_cache(maxsize=256)
def _prepared(act, with_ntk, parameterization, bias):
    """Per activation and mode, once: (the activation to compute with, its degree of homogeneity or None, the
    largest layer-0 variance it is computed at); a ValueError for activations the recursion cannot take."""
    if act.parameters:
        raise ValueError(f"activation {act.name}: give numbers for its parameters to evaluate kernels")
    if with_ntk and act.derivative.has(sp.DiracDelta):
        raise ValueError(f"activation {act.name}: its derivative is a Dirac delta, so the NTK is infinite for "
                         "colinear inputs; use theory.nngp for the NNGP alone")
    reason = _divergent_moment(act.expr, with_ntk)
    if reason:
        raise ValueError(f"activation {act.name}: {reason}; the NNGP/NTK recursion needs finite Gaussian moments")
    if parameterization in ("ntk", "standard"):
        act = _derivable(act, parameterization if with_ntk else None, bias)
    k = degree(act.expr.args[0] if type(act.expr).__name__ == "Numeric" else act.expr)
    return act, k, QUADRATURE_VARIANCE if _quadrature(act) else LARGEST_VARIANCE


def guarded(recursion):
    """``recursion`` with the guards of this module's docstring. Every argument is validated here, once:
    ``recursion`` receives float64 inputs (X2 None when it equals X1), an int depth, float variances and the
    activation to compute with."""

    @functools.wraps(recursion)
    def run(X1, X2, activation, depth, sigma_w2, sigma_b2, with_ntk, parameterization="ntk", widths=None):
        from .kernels.engine import _resolve, _variance

        with_ntk = bool(with_ntk)
        depth = checked_depth(depth)
        X1 = _validate.inputs(X1, "X1")
        X2 = None if X2 is None else _validate.inputs(X2, "X2", d=X1.shape[1])
        if X2 is not None and np.array_equal(X1, X2):
            X2 = None
        sw, sb = _variance(sigma_w2, "sigma_w2"), _variance(sigma_b2, "sigma_b2")
        act, k, largest = _prepared(_resolve(activation), with_ntk, parameterization, sb != 0)
        if k is None or sb != 0 or parameterization != "ntk":
            why = ("(not positively homogeneous)" if k is None else
                   "with a bias" if sb != 0 else "in the standard parameterization")
            for X, name in ((X1, "X1"), (X2, "X2")):
                if X is not None:
                    _largest_variance(X, sw, sb, name, act, why, largest)
            out = recursion(X1, X2, act, depth, sw, sb, with_ntk, parameterization, widths)
        else:
            d = X1.shape[1]
            Y1, s1 = _scaled(X1, _exponents(X1), d)
            Y2, s2 = (None, s1) if X2 is None else _scaled(X2, _exponents(X2), d)
            raw = recursion(Y1, Y2, act, depth, sw, sb, with_ntk, parameterization, widths)
            power = k**depth
            out = type(raw)(*(_restore(v, s1, s2, power) for v in raw))
        for value, what in zip(out, ("NNGP", "NTK")):  # max propagates NaN: one pass, no temporary
            if value is not None and value.size and np.isnan(np.max(value)):
                raise ValueError(f"activation {act.name}: the {what} came out NaN at {np.isnan(value).sum()} "
                                 f"entries for these inputs (σ_w² = {sw}, σ_b² = {sb}, depth {depth})")
        return out

    return run
