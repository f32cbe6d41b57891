"""NNGP and NTK matrices of fully-connected networks on arrays: the lambdified (or compiled) layer map, looped over
layers tile by tile."""

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from threadpoolctl import ThreadpoolController

from .. import _guard, _validate
from ..activations import activation as _activation
from ..numeric import c_compiler, lambdify
from .. import symbols as sym
from .ccode import _c_layers
from .maps import _NEAR, _FAN_IN, _INPUT_NTK, _Step, _input_angle_map, _step

__all__ = ["Kernel", "nngp", "nngp_ntk"]


class Kernel(NamedTuple):
    """The NNGP and NTK matrices of a pair of input sets (``ntk`` is None when not requested)."""

    nngp: np.ndarray
    ntk: np.ndarray | None




def _input_angles(X1, X2, g11, g12, g22):
    """(θ, sin θ, cos θ) of the angle between the inputs: from the Gram matrix, and from Kahan's
    θ = 2·atan2(|x̂ - x̂'|, |x̂ + x̂'|) for the near-colinear pairs, where the Gram matrix has lost the digits.
    θ = π/2 when an input is zero."""
    norm = np.sqrt(np.outer(g11, g22))
    cos = np.clip(np.divide(g12, norm, out=np.zeros_like(g12), where=norm > 0), -1.0, 1.0)
    theta, sin = np.arccos(cos), np.sqrt((1 - cos) * (1 + cos))
    i, j = np.nonzero(np.abs(cos) > _NEAR)
    u = X1[i] / np.linalg.norm(X1[i], axis=1, keepdims=True)
    v = X2[j] / np.linalg.norm(X2[j], axis=1, keepdims=True)
    theta[i, j] = near = 2 * np.arctan2(np.linalg.norm(u - v, axis=1), np.linalg.norm(u + v, axis=1))
    sin[i, j], cos[i, j] = np.sin(near), np.cos(near)
    return theta, sin, cos


def _fan_ins(parameterization, widths, depth, d):
    """None for the NTK parameterization; the fan-ins (d, n_0, ..., n_{L-1}) of layers 0..L for the standard one."""
    if parameterization not in ("ntk", "standard"):
        raise ValueError(f"parameterization: expected 'ntk' or 'standard', got {parameterization!r}")
    if parameterization == "ntk":
        if widths is not None:
            raise ValueError("widths: only the standard parameterization's NTK depends on the widths; "
                             "pass parameterization='standard' or no widths")
        return None
    if widths is None:
        raise ValueError("widths: the standard parameterization's NTK grows with the widths; give the hidden "
                         f"widths (an int, or {depth} ints)")
    if isinstance(widths, (str, bytes)) or not np.iterable(widths):
        widths = (widths,) * depth
    widths = tuple(_validate.count(w, f"widths[{i}]", 1) for i, w in enumerate(widths))
    if len(widths) != depth:
        raise ValueError(f"widths: expected {depth} hidden widths (one per layer), got {len(widths)}")
    return (d,) + widths


_BLAS = ThreadpoolController()

#: Pairs per tile: a tile's ~20 temporaries of 64K float64 stay within a core's cache hierarchy.
_TILE = 1 << 16


def _tiles(n, m, rows, cols, symmetric):
    """The (row, column) slices of ``rows`` × ``cols`` tiles of an n × m kernel; for a symmetric kernel (square
    tiles) only those on and above the diagonal."""
    return [(slice(r, min(r + rows, n)), slice(c, min(c + cols, m)))
            for r in range(0, n, rows) for c in range(r if symmetric else 0, m, cols)]


class _Problem(NamedTuple):
    """Everything a tile needs: inputs, their squared norms over d, the depth, the per-layer diagonals (lists for
    NumPy, None when ``compiled`` holds them), parameters."""

    X1: np.ndarray
    X2: np.ndarray
    g11: np.ndarray
    g22: np.ndarray
    depth: int
    diag1: list
    diag2: list
    step: _Step
    mode: object
    fan_in: tuple
    sw: float
    sb: float
    compiled: tuple  # the C loop over layers (see _c_layers), leading dimensions and addresses; or None


def _gram(p, rows, cols, symmetric):
    """The tile's inputs, their Gram matrix over d, and whether the tile straddles a symmetric kernel's diagonal."""
    x1, x2 = p.X1[rows], p.X2[cols]
    g12 = x1 @ x2.T / p.X1.shape[1]
    diagonal = symmetric and rows == cols
    if diagonal:
        np.fill_diagonal(g12, p.g11[rows])  # x·x from the norms, so the diagonal is exactly at ρ = 1
    return x1, x2, g12, diagonal


def _tile(p, rows, cols, symmetric):
    """K^L and Θ^L on one tile: all layers while the tile's arrays are hot in cache."""
    x1, x2, g12, diagonal = _gram(p, rows, cols, symmetric)
    g11, g22 = p.g11[rows], p.g22[cols]
    k12 = p.sb + p.sw * g12
    polar = (0.0, 0.0, 0.0)  # (θ, sin θ, cos θ) when the angle is carried
    if p.step.angle is not None:
        polar = _input_angles(x1, x2, g11, g12, g22)
    ntk = 0.0
    if p.mode is not None:
        ntk = lambdify((sym.g12, sym.sigma_w2, sym.sigma_b2, _FAN_IN), _INPUT_NTK[p.mode])(
            g12, p.sw, p.sb, p.fan_in[0] if p.fan_in else 0.0)
    if p.step.angle is not None and p.sb:
        polar = _input_angle_map()(g11[:, None], g22[None, :], polar, p.sw, p.sb)
    for l in range(p.depth):
        a, b = p.diag1[l][rows, None], p.diag2[l][None, cols]
        fan = p.fan_in[l + 1] if p.fan_in else 0.0
        out = p.step.fused(a, k12, b, *polar, ntk, p.sw, p.sb, fan)
        k12 = out[0]
        if diagonal:  # K(x, x) from the diagonal map: ρ = 1 is unstable in the chaotic phase,
            k12 = np.array(k12)        # where a rounding of K12 away from K11 would grow at every layer
            np.fill_diagonal(k12, p.diag1[l + 1][rows])
        if p.mode is not None:
            ntk = out[1]
        if p.step.angle is not None:
            polar = p.step.angle(a, b, polar, p.sw, p.sb, gaps=out[-2:])
    return k12, (None if p.mode is None else np.broadcast_to(ntk, k12.shape))


def _compiled_tile(p, rows, cols, symmetric):
    """A tile of K^L and Θ^L (and its mirror image for a symmetric kernel) by the C loop of :func:`_c_layers`,
    written into the outputs whose addresses ``p.compiled`` holds (computed once per call, not per tile)."""
    function, ld, ldo, x1, x2, g11, g22, D1, D2, fan, K, T = p.compiled
    _, _, g12, diagonal = _gram(p, rows, cols, symmetric)
    n, m = g12.shape
    r, c, d = rows.start, cols.start, p.X1.shape[1]
    mirror = symmetric  # a diagonal tile computes its upper triangle and mirrors it into place
    function(n, m, p.depth, d, x1 + 8 * r * d, x2 + 8 * c * d, g11 + 8 * r, g22 + 8 * c, g12.ctypes.data,
             D1 + 8 * r, ld[0], D2 + 8 * c, ld[1], fan, p.sw, p.sb, int(diagonal), K + 8 * (r * ldo + c),
             K + 8 * (c * ldo + r) if mirror else None, T and T + 8 * (r * ldo + c),
             T + 8 * (c * ldo + r) if mirror and T else None, ldo)


def _write(out, value, rows, cols, symmetric):
    """Store a tile of the kernel ``out``; a tile of a symmetric kernel also fills its mirror image."""
    if not symmetric:
        out[rows, cols] = value
    elif rows == cols:  # the tile straddles the diagonal: keep its upper triangle, mirror it
        out[rows, cols] = np.triu(value) + np.triu(value, 1).T
    else:
        out[rows, cols] = value
        out[cols, rows] = value.T


#: Nonzero variances outside this range would under- or overflow the products of kernel entries in the angle map
_VARIANCES = (1e-100, 1e100)


def _variance(value, name):
    value = _validate.variance(value, name)
    if value and not _VARIANCES[0] <= value <= _VARIANCES[1]:
        raise ValueError(f"{name}: expected 0 or a number in [{_VARIANCES[0]:g}, {_VARIANCES[1]:g}] (products of "
                         f"kernel entries must stay within float64), got {value}")
    return value


@lru_cache(maxsize=256)
def _named(spec):
    return _activation(spec)


def _resolve(activation):
    """The Activation of ``activation``; a name is parsed once (its derivative and maps are then cached on it)."""
    return _named(activation) if isinstance(activation, str) else _activation(activation)


@lru_cache(maxsize=256)
def _plan(act, depth, mode, bias, fan_in, cc):
    """Per network and machine, once: the layer step, the C functions (or None) and the fan-ins as an array."""
    fan = np.asarray(fan_in if fan_in else (0.0,) * (depth + 1), dtype=np.float64)
    return _step(act, mode, bias), None if cc is None else _c_layers(act, mode, bias, cc), fan


@_guard.guarded
def _recursion(X1, X2, act, depth, sw, sb, with_ntk, parameterization="ntk", widths=None):
    """The kernels of validated arguments (see :func:`theory._guard.guarded`, which checks them)."""
    symmetric = X2 is None
    fan_in = _fan_ins(parameterization, widths, depth, X1.shape[1])
    mode = None if not with_ntk else parameterization
    step, compiled, fan = _plan(act, depth, mode, sb != 0, fan_in, c_compiler())
    d = X1.shape[1]
    X1 = np.ascontiguousarray(X1)
    X2 = X1 if symmetric else np.ascontiguousarray(X2)
    g11 = np.einsum("ij,ij->i", X1, X1) / d
    g22 = g11 if symmetric else np.einsum("ij,ij->i", X2, X2) / d
    K = np.empty((X1.shape[0], X2.shape[0]))
    ntk = np.empty_like(K) if with_ntk else None
    diag1 = diag2 = None
    if compiled is not None:  # each layer's diagonal and its parts, stacked: row l*w + k
        function, diagonals, width = compiled

        def stacked(g):
            D = np.empty(((depth + 1) * width, g.size))
            diagonals(g.size, depth, g.ctypes.data, sw, sb, D.ctypes.data, g.size)
            return D

        D1 = stacked(g11)
        D2 = D1 if symmetric else stacked(g22)
        addresses = [a.ctypes.data for a in (X1, X2, g11, g22, D1, D2, fan, K)]
        compiled = (function, (D1.shape[1], D2.shape[1]), K.shape[1], *addresses,
                    None if ntk is None else ntk.ctypes.data)
    else:
        diag1, diag2 = [sb + sw * g11], [sb + sw * g22]
        for _ in range(depth):
            diag1.append(np.array(step.diag(diag1[-1], sw, sb)))
            diag2.append(diag1[-1] if symmetric else np.array(step.diag(diag2[-1], sw, sb)))
    problem = _Problem(X1, X2, g11, g22, depth, diag1, diag2, step, mode, fan_in, sw, sb, compiled)

    def work(tile):
        rows, cols = tile
        if compiled is not None:
            return _compiled_tile(problem, rows, cols, symmetric)
        with np.errstate(divide="ignore", invalid="ignore"):  # per thread: NumPy's error state is thread-local
            k, t = _tile(problem, rows, cols, symmetric)
        _write(K, k, rows, cols, symmetric)
        if with_ntk:
            _write(ntk, t, rows, cols, symmetric)

    side = int(np.sqrt(_TILE))
    cols = side if symmetric else max(1, min(K.shape[1], side))
    parallel(work, _tiles(*K.shape, side if symmetric else _TILE // cols, cols, symmetric))
    return Kernel(K, ntk)


def parallel(work, items):
    """``work(item)`` for every item: here for a single one, else on a thread per core. NumPy and ctypes release
    the GIL inside their loops, so the threads share the cores; BLAS threads would only spin against them."""
    if len(items) == 1 or (os.cpu_count() or 1) == 1:
        for item in items:
            work(item)
        return
    with _BLAS.limit(limits=1, user_api="blas"), ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(work, items))


def nngp(X1, X2=None, activation="relu", depth=1, sigma_w2=1.0, sigma_b2=0.0, parameterization="ntk", widths=None):
    """The N×M NNGP matrix K^L(X1, X2) (float64), the same in both parameterizations; see :func:`nngp_ntk`."""
    return _recursion(X1, X2, activation, depth, sigma_w2, sigma_b2, False, parameterization, widths).nngp


def nngp_ntk(X1, X2=None, activation="relu", depth=1, sigma_w2=1.0, sigma_b2=0.0, parameterization="ntk",
             widths=None):
    """The NNGP and NTK matrices K^L(X1, X2), Θ^L(X1, X2) of a depth-``depth`` network, as float64 arrays.

    Parameters
    ----------
    X1, X2 : arrays of shape (N, d) and (M, d); X2 defaults to X1.
    activation : a registered name, a SymPy expression in ``theory.symbols.z`` or an Activation.
    depth : the number L >= 0 of nonlinearities.
    sigma_w2, sigma_b2 : weight and bias variances (>= 0).
    parameterization : ``"ntk"`` (the module's convention) or ``"standard"``: z^l = W^l a^{l-1} + b^l with
        W^l ~ N(0, σ_w²/n_{l-1}), b^l ~ N(0, σ_b²) trained directly (Sohl-Dickstein et al. 2020; neural-tangents'
        ``parameterization='standard'``). Same NNGP; the NTK (Σ_θ ∂f/∂θ ∂f/∂θ') becomes
        Θ⁰ = 1 + x·x', Θ^l = n_{l-1} <φ(u)φ(v)>_{K^{l-1}} + 1 + K̇^l Θ^{l-1}, i.e. each layer contributes
        n_{l-1} ∂K^l/∂σ_w² + ∂K^l/∂σ_b² where the NTK parameterization has σ_w² ∂K^l/∂σ_w² + σ_b² ∂K^l/∂σ_b².
        It grows linearly with the widths; gradient descent is stable at a learning rate η/n (n the width scale),
        whose function-space kernel Θ/n tends to Σ_{l>=1} (n_{l-1}/n) <φφ>_{K^{l-1}} Π_{k>l} K̇^k: finite, with no
        input-layer or bias terms (those layers stop learning).
    widths : the hidden widths n_0..n_{L-1} (an int for all) -- required for, and only for, ``"standard"``.

    The numbers come from the derived one-layer map (:func:`layer`), looped over layers tile by tile (64K pairs,
    all layers while in cache, a thread per core; for X2 = None only the tiles on and above the diagonal): the
    cost is linear in the depth and in the pairs, the memory the two outputs plus a few tiles. The map is printed
    as C and compiled once per machine (cached under ``~/.cache/theory``) when a C compiler is found (``cc``, or
    ``THEORY_CC``; ``THEORY_CC=none`` disables it), and lambdified into NumPy otherwise or when an expression has
    no C form (the quadrature of activations such as tanh); both printings agree to rounding.
    Zero-norm, identical and antipodal inputs give finite values; for X2 = None the diagonal comes from the
    diagonal map, exactly at ρ = 1. For N larger than memory see :func:`theory.distributed.blocked_nngp_ntk`.
    Extreme input (:mod:`theory._guard`): positively homogeneous activations without bias are exact at any input
    norm (``inf`` with a warning only where the true value overflows); otherwise σ_w²|x|²/d + σ_b² must stay below
    1e100 (1e3 on the quadrature path) or a ValueError names the input scale; depth <= 10⁴; activations whose
    E[φ²] or E[φ'²] diverges are rejected.

    In the NTK parameterization this is the network ``serial(Dense, (Activation, Dense) × depth)`` of
    :mod:`theory.layers` (declared once per argument set and cached), whose MLP form is computed here.
    """
    if parameterization == "ntk" and widths is None:
        return _declared(_resolve(activation), _guard.checked_depth(depth), sigma_w2, sigma_b2).nngp_ntk(X1, X2)
    return _recursion(X1, X2, activation, depth, sigma_w2, sigma_b2, True, parameterization, widths)


@lru_cache(maxsize=64)
def _declared(act, depth, sigma_w2, sigma_b2):
    from ..layers import Activation, Dense, serial  # theory.layers builds on this module

    return serial(Dense(sigma_w2, sigma_b2), *[layer for _ in range(depth) for layer in (Activation(act),
                                                                                        Dense(sigma_w2, sigma_b2))])
