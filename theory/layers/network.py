r"""``serial(*layers) -> Network``: one declaration, three views -- the symbolic layer system (``net.kernels``),
the infinite-width NNGP and NTK on arrays (``net.nngp_ntk``), and finite networks (``net.network(width)``).

A network of the MLP form ``Dense, (Activation, Dense) × L`` (one activation, one (σ_w², σ_b²), vector inputs) is
computed by :mod:`theory.kernels.engine` -- the compiled, angle-carrying engine of ``theory.nngp_ntk``, identical
numbers; every other network by the generic engine below (:func:`_kernel`), the layers' maps on blocks of rows.
"""

import os
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from .. import _validate, latex
from .._progress import Progress
from ..kernels.engine import Kernel, _recursion, parallel
from ..montecarlo.mlp import EnsembleKernels, _network_seed, _seed_sequence
from .combinators import Residual, modes, run_kernel, walk_shapes
from .core import DIAG, THETA, Layer, Shape, State, sigma
from .elementwise import Activation, LayerNorm
from .linear import Conv, Dense
from ..symbols import g11, g12, g22, q11, q12, q22

__all__ = ["serial", "Network", "FiniteNetwork", "System"]

#: Memory for one block of the generic engine's state, and for one chunk of finite networks.
_BLOCK_BYTES = 64 * 2**20
_CHUNK_BYTES = 256 * 2**20


def _as_layers(layers, what):
    out = []
    for layer in layers:
        if isinstance(layer, Network):
            out.extend(layer.layers)
        elif isinstance(layer, Layer):
            out.append(layer)
        else:
            raise TypeError(f"{what}: expected layers (Dense(), Relu(), ...), got {layer!r}; note that Relu etc. "
                            "are called: Relu(), not Relu")
    return tuple(out)


def _structure(layers, gaussian=False):
    """Declaration-time checks that need no input shape: an Activation or LayerNorm needs a Dense/Conv below."""
    for i, layer in enumerate(layers):
        if isinstance(layer, (Activation, LayerNorm)) and not gaussian:
            raise ValueError(f"layer {i} {layer!r}: no Dense or Conv before it, so its input is not Gaussian at "
                             "infinite width; begin with Dense() or Conv(...)")
        if isinstance(layer, (Dense, Conv)):
            gaussian = True
        if isinstance(layer, Residual):
            _structure(layer.branch, gaussian)
            _structure(layer.shortcut, gaussian)


def serial(*layers):
    """The network applying ``layers`` in order (Networks are spliced in): see :class:`Network`."""
    layers = _as_layers(layers, "serial")
    if not layers:
        raise ValueError("serial: give at least one layer")
    _structure(layers)
    return Network(layers)


def _inputs(X, name, shape=None):
    X = _validate.real_array(X, name, "a real array of shape (N, *spatial, C)")
    if X.ndim < 2 or X.ndim > 4 or 0 in X.shape[1:]:
        raise ValueError(f"{name}: expected shape (N, C), (N, P, C) or (N, H, W, C) (channels last), got {X.shape}")
    if shape is not None and X.shape[1:] != shape:
        raise ValueError(f"{name}: shape {X.shape[1:]} per input does not match X1's {shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name}: inputs must be finite (found NaN or inf)")
    return X


class Network:
    """A network declared by :func:`serial`. Attributes: ``layers``; views: :meth:`nngp_ntk`, :attr:`kernels`,
    :meth:`network`."""

    def __init__(self, layers):
        self.layers = tuple(layers)

    def __repr__(self):
        return f"serial({', '.join(map(repr, self.layers))})"

    def output_shape(self, input_shape):
        """The Shape after the last layer for inputs of shape (*spatial, C) (ValueError naming a bad layer)."""
        return walk_shapes(self.layers, Shape(tuple(input_shape[:-1]), input_shape[-1], False, False))

    def _output_shape(self, input_shape):
        shapes = self.__dict__.setdefault("_shapes", {})  # per input shape: warm calls skip the walk
        if input_shape not in shapes:
            shapes[input_shape] = self.output_shape(input_shape)
        return shapes[input_shape]

    @cached_property
    def _mlp(self):
        """(activation, depth, σ_w², σ_b²) when the network is Dense, (Activation, Dense) × L with one activation
        and one (σ_w², σ_b²); else None."""
        first = self.layers[0]
        if not isinstance(first, Dense) or len(self.layers) % 2 == 0:
            return None
        acts, denses = self.layers[1::2], self.layers[0::2]
        if not all(type(d) is Dense and (d.sigma_w2, sigma(d.sigma_b2)) == (first.sigma_w2, sigma(first.sigma_b2))
                   for d in denses) or not all(type(a) is Activation for a in acts):
            return None
        if len({a.activation for a in acts}) > 1:
            return None
        act = acts[0].activation if acts else "identity"
        return act, len(acts), first.sigma_w2, sigma(first.sigma_b2)

    def nngp_ntk(self, X1, X2=None):
        """The NNGP and NTK matrices (float64, shape (N1, N2)) of inputs of shape (N, C), (N, P, C) or (N, H, W, C).

        The MLP form goes to :func:`theory.nngp_ntk`'s engine (compiled, angle-carrying). Otherwise the state of
        blocks of rows of X1 against all of X2 goes through the layers' maps: memory ~64 MB a block; time, per
        pair of inputs, a few passes over S² numbers (S positions) per layer below a pooling layer and S per layer
        below a Flatten, times |k| for a Conv. X2 = None gives a symmetric kernel whose diagonal is the self kernel.
        """
        if self._mlp is not None and np.ndim(X1) == 2:  # the engine's guard validates X1 and X2 (once)
            return _recursion(X1, X2, *self._mlp, True)
        X1 = _inputs(X1, "X1")
        X2 = None if X2 is None else _inputs(X2, "X2", X1.shape[1:])
        if X2 is not None and np.array_equal(X1, X2):
            X2 = None
        out = self._output_shape(X1.shape[1:])
        if out.spatial:
            raise ValueError(f"the network ends with positions {out.spatial}: end it with Flatten() or "
                             "GlobalAvgPool() and a Dense readout for a kernel of shape (N1, N2)")
        return _kernel(self.layers, X1, X2)

    @cached_property
    def kernels(self):
        """The symbolic layer-by-layer system (:class:`System`): ``equations``, ``latex()``, and for networks on
        vectors the composed ``nngp`` and ``ntk`` in g11, g12, g22."""
        return System(self.layers)

    def network(self, width, out=1):
        """A finite network of this declaration: every Dense and Conv has ``width`` output channels, the last
        layer ``out`` when it is a Dense or Conv (see :class:`FiniteNetwork`)."""
        return FiniteNetwork(self, width, out)


# --------------------------------------------------------------------------------------------------------------
# The generic engine
# --------------------------------------------------------------------------------------------------------------


def _self_kernel(X, mode):
    """K⁰(x, x)(p, p') = x_p·x_p'/C, shape (N, *s, *s) (full) or (N, *s) (diag)."""
    N, C = X.shape[0], X.shape[-1]
    spatial = X.shape[1:-1]
    flat = X.reshape(N, -1, C)
    if mode == DIAG or not spatial:
        return np.einsum("npc,npc->np", flat, flat).reshape(N, *spatial) / C
    return (flat @ np.swapaxes(flat, -1, -2)).reshape(N, *spatial, *spatial) / C


def _pair_kernel(X1, X2, mode):
    N1, N2, C = X1.shape[0], X2.shape[0], X1.shape[-1]
    spatial = X1.shape[1:-1]
    a, b = X1.reshape(N1, -1, C), X2.reshape(N2, -1, C)
    if mode == DIAG or not spatial:
        return np.einsum("npc,mpc->nmp", a, b).reshape(N1, N2, *spatial) / C
    S = a.shape[1]
    g = (a.reshape(-1, C) @ b.reshape(-1, C).T).reshape(N1, S, N2, S).transpose(0, 2, 1, 3)
    return g.reshape(N1, N2, *spatial, *spatial) / C


def _kernel(layers, X1, X2):
    """The generic engine: blocks of rows of X1 (against the columns of X2, or for a symmetric kernel those on and
    above the diagonal) through the layers' maps, a block per core at a time (NumPy releases the GIL in its loops);
    ~64 MB of state in flight over all cores."""
    symmetric = X2 is None
    X2_ = X1 if symmetric else X2
    mode = modes(layers, DIAG)[0]
    spatial = X1.shape[1:-1]
    pairs = int(np.prod(spatial)) ** (2 if mode != DIAG else 1) if spatial else 1
    n, workers = X1.shape[0], os.cpu_count() or 1
    rows = max(1, min(_BLOCK_BYTES // (8 * 8 * pairs * X2_.shape[0] * workers), -(-n // (4 * workers))))
    c1_all, c2 = _self_kernel(X1, mode), _self_kernel(X2_, mode)
    K = np.empty((n, X2_.shape[0]))
    T = np.empty_like(K)

    def work(r):
        block = slice(r, min(r + rows, n))
        cols = slice(r if symmetric else 0, X2_.shape[0])
        k = _pair_kernel(X1[block], X2_[cols], mode)
        state = State(k, np.zeros_like(k), c1_all[block].copy(), c2[cols].copy(), spatial, mode,
                      np.arange(block.stop - block.start) if symmetric else None).fix_diagonal()
        with np.errstate(divide="ignore", invalid="ignore"):  # per thread: NumPy's error state is thread-local
            state = run_kernel(layers, state)
        K[block, cols], T[block, cols] = state.k, state.t

    parallel(work, range(0, n, rows))
    if symmetric:  # exactly symmetric: the upper triangle, mirrored
        K, T = (np.triu(a) + np.triu(a, 1).T for a in (K, T))
    return Kernel(K, T)


# --------------------------------------------------------------------------------------------------------------
# The symbolic system
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _operator(text, tex):
    """An unevaluated linear operator on kernel tensors, printed ``text(K)`` and in LaTeX ``tex[K]``."""
    def _latex(self, printer):
        return rf"{tex}\left[{printer._print(self.args[0])}\right]"

    return type(text, (sp.Function,), {"_latex": _latex, "nargs": 1})


class System(latex.Equations):
    r"""The layer-by-layer kernel system of a network, as SymPy equations.

    Layer l has symbols K_{11}^{(l)}, K_{12}^{(l)}, K_{22}^{(l)} (the NNGP of (x, x), (x, x'), (x', x')) and
    Θ^{(l)}; layer 0 is the input, K⁰_{ab} = g_ab = x_a·x_b/C (per position pair), Θ⁰ = 0. A pointwise layer's
    equations are its derived map; a spatial layer's are its linear operator applied to the tensors (𝒞 a
    convolution's diagonal window average, 𝒫 a pooling's window average, means over positions).
    """

    def __init__(self, layers, compose=False):
        self.layers = layers
        self.compose = compose
        self.equations = []
        self._count = 0
        self.input = (g11, g12, g22, sp.S.Zero)
        self.output = self.run(layers, self.input)

    def _new(self, values):
        if self.compose:
            return tuple(values)
        self._count += 1
        l = self._count
        names = (sp.Symbol(f"K_11^({l})", real=True), sp.Symbol(f"K_12^({l})", real=True),
                 sp.Symbol(f"K_22^({l})", real=True), sp.Symbol(f"Theta^({l})", real=True))
        self.equations += [sp.Eq(n, v, evaluate=False) for n, v in zip(names, values)]
        return names

    def run(self, layers, state):
        for layer in layers:
            state = layer.symbolic(self, state)
        return state

    def pointwise(self, layer, state, k_expr, t_expr):
        k11, k12, k22, t = state

        def at(e, a, c, b, theta):
            return e.xreplace({q11: a, q12: c, q22: b, THETA: theta})

        values = (sp.simplify(at(k_expr, k11, k11, k11, 0)), at(k_expr, k11, k12, k22, t),
                  sp.simplify(at(k_expr, k22, k22, k22, 0)), at(t_expr, k11, k12, k22, t))
        return self._new(values)

    def linear(self, layer, state):
        op = _operator(*layer.operator_names())
        return self._new(tuple(op(s) if s != 0 else s for s in state))

    def combine(self, layer, shortcut, branch, alpha2):
        return self._new(tuple(s + alpha2 * b for s, b in zip(shortcut, branch)))

    @cached_property
    def _composed(self):
        return System(self.layers, compose=True).output

    @property
    def nngp(self):
        """The output's NNGP K(x, x') composed in g11, g12, g22 (networks on vectors without spatial layers)."""
        return self._composed[1]

    @property
    def ntk(self):
        """The output's NTK Θ(x, x') composed in g11, g12, g22."""
        return self._composed[3]

    def __repr__(self):
        return f"System({len(self.equations)} equations)"


# --------------------------------------------------------------------------------------------------------------
# Finite networks
# --------------------------------------------------------------------------------------------------------------


class FiniteNetwork:
    r"""Finite networks of a declaration, batched over an ensemble (the Monte-Carlo oracle of its kernels).

    Same parameterization and layer order as the kernel: every weight and bias entry is N(0, 1), a Dense computes
    σ_w W a/√fan_in + σ_b b; Dense and Conv have ``width`` output channels, the last layer ``out`` when it is a
    Dense or Conv. Parameters are a list, one entry per Dense/Conv in declaration order (a Residual's branch, then
    its shortcut), each a list [W] or [W, b] with a leading ensemble axis E; network i of the ensemble named by
    ``seed`` draws from its own child seed (as :meth:`theory.montecarlo.MLP.init`: W then b, layer by layer), so
    a Dense/Activation network's draws are those of :class:`theory.montecarlo.MLP` with the same widths.
    Arrays carry the ensemble axis first: outputs (E, N, out).
    """

    def __init__(self, net, width, out=1):
        self.net = net
        self.width = _validate.count(width, "width", 1)
        self.out = _validate.count(out, "out", 1)

    def __repr__(self):
        return f"{self.net!r}.network(width={self.width}, out={self.out})"

    def _parametric(self, layers, shape, last, found):
        """Walk the layers with concrete shapes (*spatial, C), listing (layer, parameter shapes)."""
        for i, layer in enumerate(layers):
            if isinstance(layer, Residual):
                b = self._parametric(layer.branch, shape, False, found)
                s = self._parametric(layer.shortcut, shape, False, found)
                if b != s:
                    raise ValueError(f"Residual: the finite branch gives shape {b}, the shortcut {s} (a shortcut "
                                     f"without a Dense/Conv needs inputs of {self.width} channels)")
                continue
            channels = self.out if last and i == len(layers) - 1 else self.width
            shapes = layer.parameter_shapes(shape, channels)
            if shapes:
                found.append((layer, shapes))
            shape = self._shape_after(layer, shape, channels)
        return shape

    def _shape_after(self, layer, shape, channels):
        s = layer.output_shape(Shape(tuple(shape[:-1]), shape[-1], True, True))
        if layer.parametric:
            return (*s.spatial, channels)
        return (*s.spatial, s.channels if s.channels is not None else shape[-1])

    def plan(self, input_shape):
        """[(layer, [parameter shapes])] in declaration order, and the output shape, for inputs of shape
        (*spatial, C)."""
        self.net.output_shape(tuple(input_shape))  # the kernel's checks, with their messages
        found = []
        out = self._parametric(self.net.layers, tuple(input_shape), True, found)
        return found, out

    def init(self, seed, networks, input_shape, *, start=0):
        """Parameters of networks ``start .. start + networks - 1`` of the ensemble named by ``seed`` (an int or a
        SeedSequence) for inputs of shape (*spatial, C)."""
        root = _seed_sequence(seed)
        networks = _validate.count(networks, "networks", 1)
        start = _validate.count(start, "start")
        found, _ = self.plan(input_shape)
        params = [[np.empty((networks, *s)) for s in shapes] for _, shapes in found]
        for e in range(networks):
            rng = np.random.default_rng(_network_seed(root, start + e))
            for arrays in params:
                for a in arrays:
                    rng.standard_normal(out=a[e])
        return params

    def _forward(self, layers, params, a, pos, tape):
        for layer in layers:
            if isinstance(layer, Residual):
                tb, ts = [], []
                b, pos = self._forward(layer.branch, params, a, pos, tb)
                s, pos = self._forward(layer.shortcut, params, a, pos, ts)
                a = s + layer.alpha * b
                tape.append((layer, None, (tb, ts)))
                continue
            p = None
            if layer.parametric:
                p, pos = params[pos], pos + 1
            a, cache = layer.forward(p, a)
            tape.append((layer, p, cache))
        return a, pos

    def forward(self, params, X):
        """``(f, tape)``: the outputs (E, N, out) on X (N, *spatial, C) and what back-propagation needs."""
        X = _inputs(X, "X")
        tape = []
        f, _ = self._forward(self.net.layers, params, X[None], 0, tape)
        return f, tape

    def apply(self, params, X):
        """The outputs of every network, shape (E, N, out)."""
        return self.forward(params, X)[0]

    def _backward(self, tape, delta, collected, top=False):
        """δ through the tape (δ of shape (E, K, N, *s, C)); appends (layer, params, cache, δ at its output) of
        every Dense/Conv to ``collected`` (in reverse order)."""
        for i, (layer, p, cache) in reversed(list(enumerate(tape))):
            if isinstance(layer, Residual):
                tb, ts = cache
                back_s = self._backward(ts, delta, collected)
                back_b = self._backward(tb, layer.alpha * delta, collected)
                delta = back_s + back_b
                continue
            if layer.parametric:
                collected.append((layer, p, cache, delta))
            if top and i == 0:
                return None  # nothing below the inputs
            delta = layer.backward(p, cache, delta)
        return delta

    def _top(self, f):
        E, N, out = f.shape
        return np.broadcast_to(np.eye(out)[None, :, None, :], (E, out, N, out))

    def ntk(self, params, X1, X2=None):
        """The empirical NTK of every network, (E, N1, N2): (1/out) Σ_k Σ_θ ∂f_k(x)/∂θ ∂f_k(x')/∂θ, layer by layer
        from per-example gradients (factorised for Dense on vectors), never a Jacobian."""
        f1, t1 = self.forward(params, X1)
        f2, t2 = (f1, t1) if X2 is None else self.forward(params, X2)
        return self._ntk(f1, t1, f2, t2)

    def _ntk(self, f1, t1, f2, t2):
        c1, c2 = [], []
        self._backward(t1, self._top(f1), c1, top=True)
        if t2 is t1:
            c2 = c1
        else:
            self._backward(t2, self._top(f2), c2, top=True)
        theta = 0
        for (layer, p, cache1, d1), (_, _, cache2, d2) in zip(c1, c2):
            theta = theta + layer.ntk_term(p, cache1, cache2, d1, d2)
        return theta / f1.shape[-1]

    def _nngp(self, f1, t1, f2, t2):
        """The readout's conditional kernel E_{last W, b}[f_k(x) f_k(x')] = σ_b² + σ_w² a·a'/fan_in when the last
        layer is a Dense (its mean over networks is E[f f'] exactly), else the outputs' product averaged over
        units."""
        layer, p, flat1 = t1[-1]
        if isinstance(layer, Dense):
            flat2 = t2[-1][2]
            k = (flat1 @ np.swapaxes(flat2, -1, -2)) * (layer.sigma_w2 / flat1.shape[-1]) + sigma(layer.sigma_b2)
            return np.broadcast_to(k, (len(p[0]),) + k.shape[-2:])
        return f1 @ np.swapaxes(f2, -1, -2) / f1.shape[-1]

    def grads(self, params, X, dloss_df):
        """Gradients (shaped as ``params``) of a loss with ∂loss/∂f = ``dloss_df`` (E, N, out)."""
        f, tape = self.forward(params, X)
        g = np.asarray(dloss_df, dtype=np.float64)
        if g.shape != f.shape:
            raise ValueError(f"dloss_df: expected shape {f.shape} (E, N, out), got {g.shape}")
        collected = []
        self._backward(tape, g[:, None], collected, top=True)
        return [layer.grads(p, cache, d) for layer, p, cache, d in reversed(collected)]

    def _bytes_per_network(self, input_shape, n):
        found, _ = self.plan(input_shape)
        sizes = [int(np.prod(s)) for _, shapes in found for s in shapes]
        spatial = int(np.prod(input_shape[:-1]))
        units = sum(int(np.prod(shapes[0][:1])) for _, shapes in found) * spatial
        return 8 * (sum(sizes) + n * self.out * max(sizes) + n * units * (8 + 4 * self.out) * 4)

    def empirical_kernels(self, X1, X2=None, networks=100, seed=0, chunk=None, progress=False):
        """The empirical NNGP and NTK of ``networks`` networks (see :meth:`ntk`, :meth:`_nngp`), ``chunk`` at a
        time (default: ~256 MB of parameters and working arrays a chunk; the result does not depend on it).
        Returns :class:`theory.montecarlo.EnsembleKernels`."""
        X1 = _inputs(X1, "X1")
        X2 = None if X2 is None else _inputs(X2, "X2", X1.shape[1:])
        networks = _validate.count(networks, "networks", 1)
        root = _seed_sequence(seed)
        n = X1.shape[0] + (0 if X2 is None else X2.shape[0])
        if chunk is None:
            chunk = max(1, _CHUNK_BYTES // self._bytes_per_network(X1.shape[1:], n))
        chunk = min(_validate.count(chunk, "chunk", 1), networks)
        M = X1.shape[0] if X2 is None else X2.shape[0]
        nngp, ntk = np.empty((networks, X1.shape[0], M)), np.empty((networks, X1.shape[0], M))
        bar = Progress(networks, "networks", enabled=progress)
        for start in range(0, networks, chunk):
            stop = min(start + chunk, networks)
            params = self.init(root, stop - start, X1.shape[1:], start=start)
            f1, t1 = self.forward(params, X1)
            f2, t2 = (f1, t1) if X2 is None else self.forward(params, X2)
            nngp[start:stop] = self._nngp(f1, t1, f2, t2)
            ntk[start:stop] = self._ntk(f1, t1, f2, t2)
            bar.update(stop)
        bar.close()
        return EnsembleKernels(nngp, ntk)
