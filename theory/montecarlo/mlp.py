r"""Finite-width fully-connected networks in NumPy, batched over ensembles: the Monte-Carlo oracle.

Convention (the one of :mod:`theory.kernels`; NTK parameterization). Input x in R^d, L nonlinearities, hidden
widths n_0..n_{L-1}, output width n_L = ``out``:

    z⁰ = σ_w W⁰ x / √d + σ_b b⁰,
    z^l = σ_w W^l φ(z^{l-1}) / √n_{l-1} + σ_b b^l,      l = 1..L,     f = z^L,

with all W, b entries iid N(0, 1), σ_w = √sigma_w2, σ_b = √sigma_b2. Depth 0 is f = z⁰ (W⁰: out×d). As the
widths grow, the ensemble of functions f becomes the Gaussian process with covariance ``theory.nngp`` and the
empirical NTK Σ_θ ∂f/∂θ ∂f/∂θ (θ = all W and b entries) tends to ``theory.nngp_ntk(...).ntk``.

Every array carries a leading ensemble axis E (one network per index): W^l has shape (E, n_l, n_{l-1}) (with
n_{-1} = d), b^l has shape (E, n_l), outputs have shape (E, N, out). Computations are batched matrix products over
that axis; φ and φ' are the package's lambdified activation (:attr:`theory.activations.Activation.numpy`).
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import _validate
from .._progress import Progress
from ..activations import activation as _activation

__all__ = ["MLP", "Params", "Cache", "EnsembleKernels", "empirical_kernels"]

#: The parameters of an ensemble: one ``(W, b)`` pair per layer, W of shape (E, fan_out, fan_in), b of (E, fan_out).
Params = list[tuple[np.ndarray, np.ndarray]]

_CHUNK_BYTES = 256 * 2**20


class Cache(NamedTuple):
    """What back-propagation needs from a forward pass.

    ``inputs[l]`` is the input a^{l-1} of layer l = 0..L (a^{-1} = X of shape (N, d), a^{l-1} = φ(z^{l-1}) of
    shape (E, N, n_{l-1})); ``pre[l]`` is the hidden pre-activation z^l, l = 0..L-1, of shape (E, N, n_l).
    """

    inputs: list
    pre: list


def _t(a):
    """The transpose of the last two axes (a view)."""
    return np.swapaxes(a, -1, -2)


def _units_first(delta):
    """δ of shape (E, K, N, n) as a view of shape (E, n, K, N) (a copy only when the memory order differs)."""
    return delta.transpose(0, 3, 1, 2)


def _seed_sequence(seed):
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(_validate.count(seed, "seed"))


def _network_seed(root, i):
    """The i-th child of ``root``: what ``root.spawn(i + 1)[i]`` returns for a root that has spawned nothing."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i), pool_size=root.pool_size)


def _widths(widths, name="widths"):
    if isinstance(widths, (str, bytes)):
        raise TypeError(f"{name}: expected a sequence of integers >= 1, got {widths!r}")
    try:
        widths = tuple(widths)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of integers >= 1, got {widths!r}") from None
    return tuple(_validate.count(w, f"{name}[{i}]", 1) for i, w in enumerate(widths))


class MLP:
    r"""A fully-connected network of depth L = ``len(widths)`` in the NTK parameterization (see the module).

    ``MLP(d, widths, activation, out, sigma_w2, sigma_b2)``: input dimension d, hidden widths n_0..n_{L-1}, output
    width ``out``. The object holds no parameters: :meth:`init` draws an ensemble of them, the other methods take
    it as their first argument.

    Other parameterizations: layer l computes z^l = m_l W^l a^{l-1} + σ_b b^l with trainable W^l initialized
    N(0, s_l²); ``multipliers`` (m_l) and ``init_stds`` (s_l), one per layer, default to the NTK
    parameterization's σ_w/√fan_in and 1 (e.g. the standard parameterization is m_l = 1, s_l = σ_w/√fan_in).
    """

    def __init__(self, d, widths, activation="relu", out=1, sigma_w2=1.0, sigma_b2=0.0, multipliers=None,
                 init_stds=None):
        self.d = _validate.count(d, "d", 1)
        self.widths = _widths(widths)
        self.depth = len(self.widths)
        self.out = _validate.count(out, "out", 1)
        self.activation = _activation(activation)
        self._phi, self._dphi = self.activation.numpy
        self.sigma_w2 = _validate.variance(sigma_w2, "sigma_w2")
        self.sigma_b2 = _validate.variance(sigma_b2, "sigma_b2")
        self._sb = np.sqrt(self.sigma_b2)
        fan_in = [n_in for _, n_in in self._shapes()]
        self.multipliers = self._per_layer(multipliers, "multipliers", [np.sqrt(self.sigma_w2 / f) for f in fan_in])
        self.init_stds = self._per_layer(init_stds, "init_stds", [1.0] * len(fan_in))

    def _per_layer(self, values, name, default):
        if values is None:
            return tuple(default)
        values = tuple(_validate.variance(v, f"{name}[{i}]") for i, v in enumerate(values))
        if len(values) != self.depth + 1:
            raise ValueError(f"{name}: expected {self.depth + 1} values (one per layer), got {len(values)}")
        return values

    def __repr__(self):
        return (f"MLP(d={self.d}, widths={self.widths}, activation={self.activation.name!r}, out={self.out}, "
                f"sigma_w2={self.sigma_w2}, sigma_b2={self.sigma_b2})")

    def _shapes(self):
        """The (fan_out, fan_in) of W^l, l = 0..L."""
        return list(zip((*self.widths, self.out), (self.d, *self.widths)))

    def _parameter_count(self):
        return sum(n_out * (n_in + 1) for n_out, n_in in self._shapes())

    def init(self, seed, networks=1, *, start=0):
        """Draw the parameters of networks ``start .. start + networks - 1`` of the ensemble named by ``seed``.

        ``seed`` is an int >= 0 or a ``numpy.random.SeedSequence`` (the root). Network i draws from its own child
        seed, the SeedSequence with spawn key ``root.spawn_key + (i,)`` (= ``SeedSequence(seed).spawn(n)[i]``):
        ``numpy.random.default_rng(child).standard_normal`` fills W⁰, b⁰, W¹, b¹, ..., W^L, b^L in this order (each
        W row-major). So network i is the same whatever ``networks`` and ``start`` are, i.e. whatever chunking a
        caller uses, and the same for any σ_w², σ_b² and activation. Returns :data:`Params` with E = ``networks``.
        """
        root = _seed_sequence(seed)
        networks = _validate.count(networks, "networks", 1)
        start = _validate.count(start, "start")
        params = [(np.empty((networks, n_out, n_in)), np.empty((networks, n_out))) for n_out, n_in in self._shapes()]
        for e in range(networks):
            rng = np.random.default_rng(_network_seed(root, start + e))
            for W, b in params:
                rng.standard_normal(out=W[e])
                rng.standard_normal(out=b[e])
        for (W, _), std in zip(params, self.init_stds):
            W *= std
        return params

    def _ensemble_size(self, params):
        """E, after checking that ``params`` fits this network."""
        if len(params) != self.depth + 1:
            raise ValueError(f"params: expected {self.depth + 1} (W, b) pairs for depth {self.depth}, "
                             f"got {len(params)}")
        E = np.shape(params[0][0])[0]
        for l, ((W, b), (n_out, n_in)) in enumerate(zip(params, self._shapes())):
            if np.shape(W) != (E, n_out, n_in) or np.shape(b) != (E, n_out):
                raise ValueError(f"params[{l}]: expected W of shape {(E, n_out, n_in)} and b of shape {(E, n_out)}, "
                                 f"got {np.shape(W)} and {np.shape(b)}")
        return E

    def _inputs(self, X, name):
        return _validate.inputs(X, name, d=self.d, d_name="the network's input dimension d =")

    def _layer(self, m, W, b, a):
        """z = m a W^T + σ_b b, batched: a is (N, fan_in) or (E, N, fan_in), z is (E, N, fan_out).

        Computed as the transpose of m W a^T + σ_b b (a view with the inputs axis contiguous): OpenBLAS is up to
        4x faster in this orientation when the layer is wider than the batch, and every later product (the next
        layer, back-propagation, the Gram matrices) takes the view without a copy. See :func:`_t`.
        """
        z = W @ _t(a)
        z *= m
        z += self._sb * b[:, :, None]
        return _t(z)

    def _forward(self, params, X):
        inputs, pre = [X], []
        for m, (W, b) in zip(self.multipliers, params[:-1]):
            z = self._layer(m, W, b, inputs[-1])
            pre.append(z)
            inputs.append(self._phi(z))
        return self._layer(self.multipliers[-1], *params[-1], inputs[-1]), Cache(inputs, pre)

    def forward(self, params, X):
        """``(f, cache)``: the outputs f = z^L of shape (E, N, out) on the (N, d) inputs X, and a :class:`Cache`."""
        self._ensemble_size(params)
        return self._forward(params, self._inputs(X, "X"))

    def apply(self, params, X):
        """The outputs f(X) of every network, shape (E, N, out)."""
        return self.forward(params, X)[0]

    def _backward(self, params, cache, top):
        """δ^l = ∂(·)/∂z^l for l = 0..L, each (E, K, N, n_l), from δ^L = ``top`` of shape (E, K, N, out).

        δ^{l-1} = m_l (δ^l W^l) ⊙ φ'(z^{l-1}); the K axis carries several output cotangents at once.
        """
        deltas = [top]
        for m, (W, _), z in zip(self.multipliers[:0:-1], params[:0:-1], cache.pre[::-1]):
            E, K, N, n = deltas[-1].shape
            # in units-first memory order (E, n, K, N), W^T δ^T is one product per network, without copies
            back = (_t(W) @ _units_first(deltas[-1]).reshape(E, n, K * N)).reshape(E, W.shape[2], K, N)
            back *= m
            back *= _t(self._dphi(z))[:, :, None, :]
            deltas.append(back.transpose(0, 2, 3, 1))
        return deltas[::-1]

    def grads(self, params, X, dloss_df):
        """Gradients ``[(dW, db), ...]`` (shapes as ``params``) of a loss with ∂loss/∂f = ``dloss_df`` (E, N, out).

        Back-propagation from δ^L = ∂loss/∂f: δ^{l-1} = m_l (W^l)^T δ^l ⊙ φ'(z^{l-1}); then, summed over the N
        inputs, dW^l = m_l Σ_x δ^l(x) a^{l-1}(x)^T and db^l = σ_b Σ_x δ^l(x) (a^{-1} = x; m_l = σ_w/√n_{l-1} in the
        NTK parameterization). Gradient descent is ``W - lr * dW``, ``b - lr * db``.
        """
        E = self._ensemble_size(params)
        X = self._inputs(X, "X")
        g = np.asarray(dloss_df, dtype=np.float64)
        if g.shape != (E, X.shape[0], self.out):
            raise ValueError(f"dloss_df: expected shape {(E, X.shape[0], self.out)} (E, N, out), got {g.shape}")
        return self._grads(params, self._forward(params, X)[1], g)

    def _grads(self, params, cache, g):
        """The gradients of :meth:`grads` from a forward pass's cache and ∂loss/∂f = g."""
        deltas = [delta[:, 0] for delta in self._backward(params, cache, g[:, None])]
        return [(m * (delta.transpose(0, 2, 1) @ a), self._sb * delta.sum(axis=1))
                for m, delta, a in zip(self.multipliers, deltas, cache.inputs)]

    def _pair(self, params, X1, X2):
        """Forward passes on X1 and X2 (the same object when X2 is None)."""
        self._ensemble_size(params)
        first = self._forward(params, self._inputs(X1, "X1"))
        return first, first if X2 is None else self._forward(params, self._inputs(X2, "X2"))

    def _unit_deltas(self, params, cache):
        """δ^l_k = ∂f_k/∂z^l for all output units k at once (δ^L_k = e_k), each as (E, n_l·out, N): the units of
        all outputs first, the inputs last (the memory order of :meth:`_backward`, so this is a view)."""
        E, N, out = params[0][0].shape[0], cache.inputs[0].shape[0], self.out
        top = np.broadcast_to(np.eye(out)[None, :, None, :], (E, out, N, out))
        return [_units_first(d).reshape(E, -1, N) for d in self._backward(params, cache, top)]

    def _ntk(self, params, cache1, cache2):
        """Θ(x, x') = Σ_l D^l(x, x') [m_l² a^{l-1}(x)·a^{l-1}(x') + σ_b²], D^l = (1/out) Σ_k δ^l_k·δ^l_k'.

        Both Gram matrices are products A^T B of units-first arrays (BLAS syrk when X2 is X1); the sum is in place.
        """
        deltas1 = self._unit_deltas(params, cache1)
        deltas2 = deltas1 if cache2 is cache1 else self._unit_deltas(params, cache2)
        theta = np.zeros((deltas1[0].shape[0], deltas1[0].shape[2], deltas2[0].shape[2]))
        for m, d1, d2, a1, a2 in zip(self.multipliers, deltas1, deltas2, cache1.inputs, cache2.inputs):
            gram = a1 @ _t(a2)  # (N, M) for the inputs X (no ensemble axis), else (E, N, M)
            gram *= m**2
            gram += self.sigma_b2
            term = _t(d1) @ d2
            term *= gram
            theta += term
        theta /= self.out
        return theta

    def ntk(self, params, X1, X2=None):
        r"""The empirical NTK of every network, shape (E, N, M), averaged over output units k:

        Θ(x, x') = (1/out) Σ_k Σ_θ ∂f_k(x)/∂θ ∂f_k(x')/∂θ, computed layer by layer (never the Jacobian): the W^l
        term is (σ_w²/n_{l-1}) (δ^l_k(x)·δ^l_k(x')) (a^{l-1}(x)·a^{l-1}(x')), the b^l term σ_b² δ^l_k(x)·δ^l_k(x'),
        with δ^l_k = ∂f_k/∂z^l, a^{-1} = x, a^{l-1} = φ(z^{l-1}). X2 defaults to X1.
        """
        (_, c1), (_, c2) = self._pair(params, X1, X2)
        return self._ntk(params, c1, c2)

    def nngp(self, params, X1, X2=None):
        """The empirical NNGP of every network, shape (E, N, M): the output covariance given its hidden features,

        K̂(x, x') = E_{W^L, b^L}[f_k(x) f_k(x')] = σ_b² + m_L² s_L² a^{L-1}(x)·a^{L-1}(x')

        (= σ_b² + σ_w² a·a'/n_{L-1} in the NTK parameterization; a^{-1} = x at depth 0), the readout's kernel. Its mean over an ensemble equals
        E[f(x) f(x')] exactly, and it fluctuates O(n^{-1/2}) where f(x) f(x') fluctuates O(1). X2 defaults to X1.
        """
        (_, c1), (_, c2) = self._pair(params, X1, X2)
        return self._nngp(params, c1, c2)

    def _nngp(self, params, cache1, cache2):
        a1, a2 = cache1.inputs[-1], cache2.inputs[-1]  # at depth 0 the inputs, without an ensemble axis
        scale = (self.multipliers[-1] * self.init_stds[-1]) ** 2
        kernel = scale * (a1 @ np.swapaxes(a2, -1, -2)) + self.sigma_b2
        return np.broadcast_to(kernel, (len(params[0][0]),) + kernel.shape[-2:])


@dataclass(frozen=True)
class EnsembleKernels:
    """Per-network empirical kernels of an ensemble: ``nngp`` and ``ntk`` of shape (networks, N, M).

    The ``*_mean`` properties average over networks; ``*_se`` are standard errors of those means, the sample
    standard deviation (ddof=1) over √networks; they need two networks at least (a ValueError for one).
    """

    nngp: np.ndarray
    ntk: np.ndarray

    @staticmethod
    def _se(samples):
        if samples.shape[0] < 2:
            raise ValueError(f"standard error: needs networks >= 2 (a sample standard deviation), this ensemble has "
                             f"{samples.shape[0]}; the kernels themselves (nngp, ntk, *_mean) are available")
        return samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])

    @property
    def nngp_mean(self):
        return self.nngp.mean(axis=0)

    @property
    def nngp_se(self):
        return self._se(self.nngp)

    @property
    def ntk_mean(self):
        return self.ntk.mean(axis=0)

    @property
    def ntk_se(self):
        return self._se(self.ntk)


def _hidden_widths(width, depth):
    if isinstance(width, (str, bytes)) or not np.iterable(width):
        return (_validate.count(width, "width", 1),) * depth
    widths = _widths(width, "width")
    if len(widths) != depth:
        raise ValueError(f"width: got {len(widths)} widths for depth {depth}")
    return widths


def _bytes_per_network(mlp, n1, n2):
    """An upper estimate of one network's memory in :func:`empirical_kernels`: its parameters, the forward caches
    and back-propagated deltas of its n1 + n2 inputs, and a few n1×n2 kernel temporaries."""
    units = sum(mlp.widths) + mlp.out
    return 8 * (mlp._parameter_count() + (n1 + n2) * units * (2 + 2 * mlp.out) + 4 * n1 * n2)


def empirical_kernels(X1, X2=None, activation="relu", depth=1, width=512, networks=100, seed=0, sigma_w2=1.0,
                      sigma_b2=0.0, out=1, chunk=None, progress=False):
    """The empirical NNGP and NTK (see :meth:`MLP.nngp`, :meth:`MLP.ntk`) of an ensemble of ``networks`` MLPs.

    The networks have depth ``depth``, hidden widths ``width`` (an int for all layers, or a sequence of ``depth``
    ints) and the parameters of :meth:`MLP.init` with ``seed``. They are evaluated ``chunk`` at a time (by default
    as many as keep the parameters and working arrays of a chunk within ~256 MB); the result does not depend on
    ``chunk``. ``progress=True`` shows a progress bar on stderr. Returns :class:`EnsembleKernels`.
    """
    X1 = _validate.inputs(X1, "X1")
    X2 = None if X2 is None else _validate.inputs(X2, "X2", d=X1.shape[1])
    depth = _validate.count(depth, "depth")
    mlp = MLP(X1.shape[1], _hidden_widths(width, depth), activation, out, sigma_w2, sigma_b2)
    networks = _validate.count(networks, "networks", 1)
    root = _seed_sequence(seed)
    M = X1.shape[0] if X2 is None else X2.shape[0]
    if chunk is None:
        chunk = max(1, _CHUNK_BYTES // _bytes_per_network(mlp, X1.shape[0], M))
    chunk = min(_validate.count(chunk, "chunk", 1), networks)
    nngp, ntk = np.empty((networks, X1.shape[0], M)), np.empty((networks, X1.shape[0], M))
    bar = Progress(networks, "networks", enabled=progress)
    for start in range(0, networks, chunk):
        stop = min(start + chunk, networks)
        params = mlp.init(root, stop - start, start=start)
        (_, c1), (_, c2) = mlp._pair(params, X1, X2)
        nngp[start:stop] = mlp._nngp(params, c1, c2)
        ntk[start:stop] = mlp._ntk(params, c1, c2)
        bar.update(stop)
    bar.close()
    return EnsembleKernels(nngp, ntk)
