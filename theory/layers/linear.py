r"""Linear layers: Dense, Conv, AvgPool, GlobalAvgPool, Flatten (neural-tangents' conventions).

Kernel maps, with K the kernel of the layer's input per channel (K⁰(p, p') = x_p·x'_p'/C) and Θ its NTK:

* ``Dense``  (per position, fan-in C):       K' = σ_b² + σ_w² K,                Θ' = K' + σ_w² Θ;
* ``Conv``   (fan-in |k|·C, stride 1):        K'(p,p') = σ_b² + σ_w² 𝒞[K](p,p'),  Θ' = K' + σ_w² 𝒞[Θ],
  𝒞[K](p,p') = (1/|k|) Σ_{o in kernel} K(p+o, p'+o) (zero outside the input for SAME padding);
* ``AvgPool`` (window w, stride s):            K'(p,p') = (1/|w|²) Σ_{a,b in w} K(s p + a, s p' + b), Θ alike;
* ``GlobalAvgPool``:                           K' = mean_{p,p'} K(p,p');  ``Flatten``: K' = mean_p K(p,p)
  (the following Dense normalises by its fan-in S·C), Θ alike.

The pair tensor costs N1·N2·S² numbers in "full" mode (every pair of positions; needed under AvgPool and
GlobalAvgPool) and N1·N2·S in "diag" mode (enough for a Flatten readout); a Conv costs |k| passes over it.
"""

import itertools

import numpy as np
import sympy as sp

from .core import DIAG, FULL, THETA, Layer, Shape, apply_pointwise, sigma, variance
from ..symbols import q12

__all__ = ["Dense", "Conv", "AvgPool", "GlobalAvgPool", "Flatten"]

_PADDINGS = ("SAME", "VALID")


def _dense_maps(sw, sb):
    k = sigma(sb) + sw * q12
    return k, k + sw * THETA


def _dense_symbolic(system, state, layer, sw, sb):
    return system.pointwise(layer, state, *_dense_maps(sp.nsimplify(sw), sp.nsimplify(sigma(sb))))


class Dense(Layer):
    """A fully-connected layer on the channel axis (per position for images): z = σ_w W a/√C + σ_b b, W and b
    N(0, 1) entries (``sigma_b2=None``: no bias). Cost: one pointwise pass over the kernel state."""

    parametric = True

    def __init__(self, sigma_w2=1.0, sigma_b2=0.0):
        self.sigma_w2 = variance(sigma_w2, "sigma_w2", "Dense")
        self.sigma_b2 = variance(sigma_b2, "sigma_b2", "Dense", allow_none=True)

    def __repr__(self):
        return f"Dense(sigma_w2={self.sigma_w2}, sigma_b2={self.sigma_b2})"

    def output_shape(self, shape):
        return Shape(shape.spatial, None, True, True)

    def pointwise(self):
        return _dense_maps(self.sigma_w2, self.sigma_b2)

    def symbolic(self, system, state):
        return _dense_symbolic(system, state, self, self.sigma_w2, self.sigma_b2)

    # finite network
    def parameter_shapes(self, shape_in, channels_out):
        return [(channels_out, shape_in[-1])] + ([(channels_out,)] if self.sigma_b2 is not None else [])

    def _m(self, params):
        return np.sqrt(self.sigma_w2 / params[0].shape[-1])

    def forward(self, params, a):
        W = params[0]
        flat = a.reshape(a.shape[0], -1, a.shape[-1])
        z = flat @ np.swapaxes(W, -1, -2)
        z *= self._m(params)
        if self.sigma_b2 is not None:
            z += np.sqrt(self.sigma_b2) * params[1][:, None, :]
        return z.reshape(z.shape[0], *a.shape[1:-1], W.shape[1]), flat

    def backward(self, params, cache, delta):
        W = params[0]
        E, K = delta.shape[:2]
        back = delta.reshape(E, K, -1, delta.shape[-1]) @ W[:, None]
        back *= self._m(params)
        return back.reshape(*delta.shape[:-1], W.shape[-1])

    def ntk_term(self, params, cache1, cache2, delta1, delta2):
        return _ntk_term(self._m(params), self.sigma_b2, cache1, cache2, delta1, delta2)

    def grads(self, params, cache, delta):
        return _grads(self._m(params), self.sigma_b2, cache, delta, params[0].shape)


def _ntk_term(m, sb, p1, p2, d1, d2):
    """Σ_k ⟨∂f_k(x)/∂(W, b), ∂f_k(x')/∂(W, b)⟩ from the per-example gradients g_W = m Σ_p δ_p ⊗ patch_p and
    g_b = σ_b Σ_p δ_p; p (E or 1, N·S, F) the patches, d (E, K, N, *s, C_out). Without spatial axes it is the
    factorised m² (δ·δ')(a·a') + σ_b² δ·δ', never forming a gradient."""
    E, K, N1 = d1.shape[:3]
    N2 = d2.shape[2]
    C = d1.shape[-1]
    d1, d2 = d1.reshape(E, K, N1, -1, C), d2.reshape(E, K, N2, -1, C)
    S = d1.shape[3]
    if S == 1:
        D = np.einsum("ekic,ekjc->eij", d1[:, :, :, 0], d2[:, :, :, 0])
        A = p1 @ np.swapaxes(p2, -1, -2)
        A *= m * m
        if sb is not None:
            A += sb
        return D * A
    P1, P2 = (p.reshape(p.shape[0], n, S, -1) for p, n in ((p1, N1), (p2, N2)))
    G1 = np.swapaxes(P1, -1, -2)[:, None] @ d1  # (E, K, N1, F, C)
    G2 = G1 if (p2 is p1 and d2 is d1) else np.swapaxes(P2, -1, -2)[:, None] @ d2
    out = np.einsum("ekif,ekjf->eij", G1.reshape(E, K, N1, -1), G2.reshape(E, K, N2, -1)) * (m * m)
    if sb is not None:
        out += sb * np.einsum("ekic,ekjc->eij", d1.sum(axis=3), d2.sum(axis=3))
    return out


def _grads(m, sb, patches, delta, w_shape):
    E = delta.shape[0]
    d = delta.reshape(E, -1, delta.shape[-1])  # K = 1: (E, N·S, C_out)
    p = np.broadcast_to(patches, (E, *patches.shape[1:]))
    dW = (np.swapaxes(d, -1, -2) @ p) * m
    out = [dW.reshape(w_shape)]
    if sb is not None:
        out.append(np.sqrt(sb) * d.sum(axis=1))
    return out


def _tuple(value, name, layer):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        value = tuple(value)
    except TypeError:
        raise TypeError(f"{layer}: {name} must be a tuple of 1 or 2 positive integers, got {value!r}") from None
    if not 1 <= len(value) <= 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                           for v in value):
        raise ValueError(f"{layer}: {name} must be a tuple of 1 or 2 positive integers, got {value!r}")
    return tuple(int(v) for v in value)


def _padding(padding, layer):
    if padding not in _PADDINGS:
        raise ValueError(f"{layer}: padding must be 'SAME' or 'VALID', got {padding!r}")
    return padding


def _pads(kernel, padding):
    """(low, high) zero padding per axis: XLA's SAME (total k - 1, the extra one at the end), or none."""
    return [((k - 1) // 2, k - 1 - (k - 1) // 2) if padding == "SAME" else (0, 0) for k in kernel]


def _spatial_check(layer, shape, window, padding, what):
    if not shape.spatial:
        raise ValueError(f"{layer!r}: needs spatial axes, but its input is a vector (N, C) -- a 2-D input, or "
                         "after Flatten/GlobalAvgPool; give inputs of shape (N, *spatial, C)")
    if len(window) != len(shape.spatial):
        raise ValueError(f"{layer!r}: a {len(window)}-D {what} on {len(shape.spatial)}-D positions "
                         f"{shape.spatial}")
    if padding == "VALID" and any(w > s for w, s in zip(window, shape.spatial)):
        raise ValueError(f"{layer!r}: {what} {window} is larger than the input's positions {shape.spatial} "
                         "(VALID padding)")


def _shift_sum(a, lead, r, kernel, pads):
    """(1/|k|) Σ_o a[..., p + o, ..., p' + o] on a zero-padded tensor of shape (*lead, *s) or (*lead, *s, *s):
    both position sets shift by the same offset (the diagonal-direction sum of a convolution), dimension by
    dimension (separable: Σ k_i passes, not Π k_i). The padding is not materialised: each offset adds the
    in-range part of its slice."""
    n_sets = (a.ndim - lead) // r
    for i in range(r):
        axes = [lead + j * r + i for j in range(n_sets)]
        n_in, (low, high) = a.shape[axes[0]], pads[i]
        size = n_in + low + high - kernel[i] + 1
        shape = list(a.shape)
        for axis in axes:
            shape[axis] = size
        out = np.zeros(shape)
        for shift in range(-low, kernel[i] - low):  # output p reads input p + shift where it is in range
            start, stop = max(0, -shift), min(size, n_in - shift)
            if start >= stop:
                continue
            into, source = [slice(None)] * a.ndim, [slice(None)] * a.ndim
            for axis in axes:
                into[axis], source[axis] = slice(start, stop), slice(start + shift, stop + shift)
            out[tuple(into)] += a[tuple(source)]
        out /= kernel[i]
        a = out
    return a


class Conv(Layer):
    """A convolution with ``kernel`` (1 or 2 sizes: 1-D or 2-D), stride 1, ``padding`` SAME (zeros, as
    neural-tangents) or VALID; fan-in |k|·C: z_p = σ_w/√(|k| C) Σ_{o,c} W_{o,c} a_{p+o,c} + σ_b b.
    Kernel cost: |k| passes over the state (N1·N2·S² numbers in full mode, N1·N2·S in diag mode)."""

    parametric = True

    def __init__(self, kernel, padding="SAME", sigma_w2=1.0, sigma_b2=0.0):
        self.kernel_size = _tuple(kernel, "kernel", "Conv")
        self.padding = _padding(padding, "Conv")
        self.sigma_w2 = variance(sigma_w2, "sigma_w2", "Conv")
        self.sigma_b2 = variance(sigma_b2, "sigma_b2", "Conv", allow_none=True)

    def __repr__(self):
        return f"Conv({self.kernel_size}, padding={self.padding!r}, sigma_w2={self.sigma_w2}, " \
               f"sigma_b2={self.sigma_b2})"

    def output_shape(self, shape):
        _spatial_check(self, shape, self.kernel_size, self.padding, "kernel")
        pads = _pads(self.kernel_size, self.padding)
        spatial = tuple(s + sum(p) - k + 1 for s, p, k in zip(shape.spatial, pads, self.kernel_size))
        return Shape(spatial, None, True, True)

    def _op(self, a, lead, r):
        return _shift_sum(a, lead, r, self.kernel_size, _pads(self.kernel_size, self.padding))

    def kernel(self, state):
        r = len(state.spatial)
        k, t = self._op(state.k, 2, r), self._op(state.t, 2, r)
        c1, c2 = self._op(state.c1, 1, r), self._op(state.c2, 1, r)
        spatial = k.shape[2:2 + r]
        moved = state.replace(k=k, t=t, c1=c1, c2=c2, spatial=spatial)
        return apply_pointwise(moved, *_dense_maps(self.sigma_w2, self.sigma_b2))

    def operator_names(self):
        size = "x".join(map(str, self.kernel_size))
        return f"Conv{size}", r"\mathcal{C}_{" + size.replace("x", r"\times") + "}"

    def symbolic(self, system, state):
        return _dense_symbolic(system, system.linear(self, state), self, self.sigma_w2, self.sigma_b2)

    # finite network
    def parameter_shapes(self, shape_in, channels_out):
        return [(channels_out, *self.kernel_size, shape_in[-1])] + \
            ([(channels_out,)] if self.sigma_b2 is not None else [])

    def _m(self, params):
        return np.sqrt(self.sigma_w2 / np.prod(params[0].shape[2:]))

    def _patches(self, a):
        """(E or 1, N·S_out, |k|·C) patches in (offset..., channel) order, W's flattened order."""
        r = len(self.kernel_size)
        pads = _pads(self.kernel_size, self.padding)
        padded = np.pad(a, [(0, 0), (0, 0)] + pads + [(0, 0)])
        out = [padded.shape[2 + i] - self.kernel_size[i] + 1 for i in range(r)]
        cols = [padded[(slice(None), slice(None), *(slice(o[i], o[i] + out[i]) for i in range(r)))]
                for o in itertools.product(*(range(k) for k in self.kernel_size))]
        patches = np.stack(cols, axis=-2)  # (E, N, *out, |k|, C)
        return patches.reshape(a.shape[0], -1, patches.shape[-2] * patches.shape[-1]), out

    def forward(self, params, a):
        patches, out = self._patches(a)
        W = params[0]
        z = patches @ np.swapaxes(W.reshape(W.shape[0], W.shape[1], -1), -1, -2)
        z *= self._m(params)
        if self.sigma_b2 is not None:
            z += np.sqrt(self.sigma_b2) * params[1][:, None, :]
        return z.reshape(z.shape[0], a.shape[1], *out, W.shape[1]), (patches, a.shape)

    def backward(self, params, cache, delta):
        _, shape = cache
        W = params[0]
        E, K, N = delta.shape[:3]
        r = len(self.kernel_size)
        Wf = W.reshape(E, W.shape[1], -1)
        dp = (delta.reshape(E, K, -1, W.shape[1]) @ Wf[:, None]) * self._m(params)
        dp = dp.reshape(E, K, N, *delta.shape[3:3 + r], len(Wf[0, 0]) // shape[-1], shape[-1])
        pads = _pads(self.kernel_size, self.padding)
        padded = np.zeros((E, K, N, *(shape[2 + i] + sum(pads[i]) for i in range(r)), shape[-1]))
        out = delta.shape[3:3 + r]
        for j, o in enumerate(itertools.product(*(range(k) for k in self.kernel_size))):
            padded[(slice(None),) * 3 + tuple(slice(o[i], o[i] + out[i]) for i in range(r))] += dp[..., j, :]
        return padded[(slice(None),) * 3 + tuple(slice(p[0], p[0] + shape[2 + i]) for i, p in enumerate(pads))]

    def ntk_term(self, params, cache1, cache2, delta1, delta2):
        return _ntk_term(self._m(params), self.sigma_b2, cache1[0], cache2[0], delta1, delta2)

    def grads(self, params, cache, delta):
        return _grads(self._m(params), self.sigma_b2, cache[0], delta, params[0].shape)


class AvgPool(Layer):
    """Average pooling over ``window`` (1 or 2 sizes) with ``strides`` (default 1, as neural-tangents) and
    ``padding`` VALID or SAME (zeros counted in the average: neural-tangents' ``normalize_edges=False``).
    Needs the full pair tensor; cost |w| passes over it per position set."""

    def __init__(self, window, strides=None, padding="VALID"):
        self.window = _tuple(window, "window", "AvgPool")
        self.strides = (1,) * len(self.window) if strides is None else _tuple(strides, "strides", "AvgPool")
        if len(self.strides) != len(self.window):
            raise ValueError(f"AvgPool: strides {self.strides} and window {self.window} differ in rank")
        self.padding = _padding(padding, "AvgPool")

    def __repr__(self):
        return f"AvgPool({self.window}, strides={self.strides}, padding={self.padding!r})"

    def _pads(self, spatial):
        if self.padding == "VALID":
            return [(0, 0)] * len(spatial)
        pads = []
        for s, w, st in zip(spatial, self.window, self.strides):  # XLA's SAME for a strided window
            out = -(-s // st)
            total = max((out - 1) * st + w - s, 0)
            pads.append((total // 2, total - total // 2))
        return pads

    def _out(self, spatial):
        pads = self._pads(spatial)
        return tuple((s + sum(p) - w) // st + 1 for s, p, w, st in zip(spatial, pads, self.window, self.strides))

    def output_shape(self, shape):
        _spatial_check(self, shape, self.window, self.padding, "window")
        return Shape(self._out(shape.spatial), shape.channels, shape.gaussian, shape.fresh)

    def requires(self, mode):
        return FULL

    def _pool_axis(self, a, axis, i, spatial):
        """Window average along one position axis (dimension i of the positions)."""
        lo, hi = self._pads(spatial)[i]
        width = [(0, 0)] * a.ndim
        width[axis] = (lo, hi)
        padded = np.pad(a, width)
        n = self._out(spatial)[i]
        st, w = self.strides[i], self.window[i]
        out = 0
        for o in range(w):
            index = [slice(None)] * a.ndim
            index[axis] = slice(o, o + st * (n - 1) + 1, st)
            out = out + padded[tuple(index)]
        return out / w

    def _op(self, a, lead, spatial, sets):
        r = len(spatial)
        for s in range(sets):
            for i in range(r):
                a = self._pool_axis(a, lead + s * r + i, i, spatial)
        return a

    def kernel(self, state):
        sp_ = state.spatial
        return state.replace(k=self._op(state.k, 2, sp_, 2), t=self._op(state.t, 2, sp_, 2),
                             c1=self._op(state.c1, 1, sp_, 2), c2=self._op(state.c2, 1, sp_, 2),
                             spatial=self._out(sp_)).fix_diagonal()

    def operator_names(self):
        size = "x".join(map(str, self.window))
        return f"Pool{size}", r"\mathcal{P}_{" + size.replace("x", r"\times") + "}"

    def symbolic(self, system, state):
        return system.linear(self, state)

    def forward(self, params, a):
        return self._op(a, 2, a.shape[2:-1], 1), a.shape

    def backward(self, params, cache, delta):
        shape = cache
        spatial = shape[2:-1]
        r = len(spatial)
        pads = self._pads(spatial)
        out = self._out(spatial)
        E, K, N = delta.shape[:3]
        padded = np.zeros((E, K, N, *(s + sum(p) for s, p in zip(spatial, pads)), shape[-1]))
        for o in itertools.product(*(range(w) for w in self.window)):
            index = tuple(slice(o[i], o[i] + self.strides[i] * (out[i] - 1) + 1, self.strides[i]) for i in range(r))
            padded[(slice(None),) * 3 + index] += delta
        padded /= np.prod(self.window)
        return padded[(slice(None),) * 3 + tuple(slice(p[0], p[0] + s) for p, s in zip(pads, spatial))]


class GlobalAvgPool(Layer):
    """The mean over all positions: (N, *s, C) -> (N, C); K' = mean_{p,p'} K(p,p'). Needs the full pair tensor."""

    def output_shape(self, shape):
        if not shape.spatial:
            raise ValueError("GlobalAvgPool(): its input is a vector (N, C) -- nothing to pool (a 2-D input, or "
                             "after Flatten/GlobalAvgPool)")
        return Shape((), shape.channels, shape.gaussian, shape.fresh)

    def requires(self, mode):
        return FULL

    def kernel(self, state):
        r = len(state.spatial)

        def mean(a, lead):
            return a.reshape(*a.shape[:lead], -1).mean(axis=-1)

        return state.replace(k=mean(state.k, 2), t=mean(state.t, 2), c1=mean(state.c1, 1), c2=mean(state.c2, 1),
                             spatial=(), mode=DIAG) if r else state

    def operator_names(self):
        return "MeanAllPairs", r"\operatorname{mean}_{p,p'}"

    def symbolic(self, system, state):
        return system.linear(self, state)

    def forward(self, params, a):
        return a.mean(axis=tuple(range(2, a.ndim - 1))), a.shape

    def backward(self, params, cache, delta):
        shape = cache
        S = int(np.prod(shape[2:-1]))
        out = np.broadcast_to(delta[:, :, :, *(None,) * (len(shape) - 3), :],
                              delta.shape[:3] + tuple(shape[2:]))
        return out / S


class Flatten(Layer):
    """(N, *s, C) -> (N, S·C), channel-last row-major; the next Dense's fan-in is S·C, so K' = mean_p K(p,p)
    (neural-tangents' Flatten). Needs only the positions' diagonal."""

    def output_shape(self, shape):
        if not shape.spatial:
            raise ValueError("Flatten(): its input is already a vector (N, C) (Flatten twice, a 2-D input, or "
                             "after GlobalAvgPool)")
        channels = None if shape.channels is None else shape.channels * int(np.prod(shape.spatial))
        return Shape((), channels, shape.gaussian, shape.fresh)

    def requires(self, mode):
        return DIAG

    def kernel(self, state):
        if not state.spatial:
            return state

        def mean(a, lead):
            return a.reshape(*a.shape[:lead], -1).mean(axis=-1)

        return state.replace(k=mean(state.k, 2), t=mean(state.t, 2), c1=mean(state.c1, 1), c2=mean(state.c2, 1),
                             spatial=())

    def operator_names(self):
        return "MeanDiagonal", r"\operatorname{mean}_{p=p'}"

    def symbolic(self, system, state):
        return system.linear(self, state)

    def forward(self, params, a):
        return a.reshape(a.shape[0], a.shape[1], -1), a.shape

    def backward(self, params, cache, delta):
        return delta.reshape(*delta.shape[:3], *cache[2:])
