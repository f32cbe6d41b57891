r"""Forward sampling of finite-width networks by Gaussian conditioning: exact in law, cheap in width.

In the convention of :mod:`theory.montecarlo.mlp`, given the previous layer's activations a^{l-1} on N inputs,
the pre-activations z^l_i(x) = σ_w W^l_i·a^{l-1}(x)/√n_{l-1} + σ_b b^l_i are, for each unit i independently, jointly
Gaussian over the inputs with covariance

    K̂^l(x, x') = σ_b² + σ_w² a^{l-1}(x)·a^{l-1}(x') / n_{l-1}       (a^{-1} = x, n_{-1} = d).

So z^l can be drawn as (K̂^l)^{1/2} ξ with ξ ~ N(0, I): O(N² n) per layer instead of the O(N n²) of drawing W.
This is the same distribution of every forward quantity (outputs, kernels, moments) as the full network's, but
not the same parameters: it cannot give gradients or the NTK (use :class:`~theory.montecarlo.MLP` for those).
"""

import numpy as np

from .. import _validate
from ..activations import activation as _activation
from .._progress import Progress
from .mlp import _hidden_widths, _network_seed, _seed_sequence

__all__ = ["layer_kernels"]

_CHUNK_BYTES = 256 * 2**20


def _sqrt_psd(K):
    """A square root R (R Rᵀ = K) of a batch of symmetric PSD matrices, valid when they are singular."""
    w, U = np.linalg.eigh(K)
    return U * np.sqrt(np.maximum(w, 0.0))[..., None, :]


def layer_kernels(X, activation="relu", depth=1, width=512, networks=1000, seed=0, sigma_w2=1.0, sigma_b2=0.0,
                  chunk=None, progress=False):
    r"""The per-network empirical kernels K̂^l, l = 0..L, of an ensemble, shape (networks, L + 1, N, N).

    K̂^l(x, x') = σ_b² + σ_w² a^{l-1}(x)·a^{l-1}(x')/n_{l-1} is the covariance of the layer-l pre-activations
    given the layer below (K̂⁰ is the deterministic input kernel; K̂^L is the readout's, i.e. the empirical NNGP).
    A layer-l pre-activation is Gaussian given K̂^l, so E[z⁴]/(3 E[z²]²) - 1 = Var K̂^l(x, x) / (E K̂^l(x, x))².

    ``width`` is an int for all hidden layers or a sequence of ``depth`` ints. Network i draws from the child
    seed i of ``seed`` (a SeedSequence spawn key), so results do not depend on ``chunk``.
    """
    X = _validate.inputs(X, "X")
    depth = _validate.count(depth, "depth")
    widths = _hidden_widths(width, depth)
    act = _activation(activation)
    phi, _ = act.numpy
    networks = _validate.count(networks, "networks", 1)
    sw, sb = _validate.variance(sigma_w2, "sigma_w2"), _validate.variance(sigma_b2, "sigma_b2")
    root = _seed_sequence(seed)
    N = X.shape[0]
    if chunk is None:
        chunk = max(1, _CHUNK_BYTES // (8 * (N * max(widths, default=1) * 3 + (depth + 1) * N * N)))
    chunk = min(_validate.count(chunk, "chunk", 1), networks)
    out = np.empty((networks, depth + 1, N, N))
    out[:, 0] = sb + sw * (X @ X.T) / X.shape[1]
    bar = Progress(networks, "networks", enabled=progress)
    for start in range(0, networks, chunk):
        stop = min(start + chunk, networks)
        rngs = [np.random.default_rng(_network_seed(root, i)) for i in range(start, stop)]
        for l, n in enumerate(widths):
            noise = np.stack([rng.standard_normal((N, n)) for rng in rngs])
            a = phi(_sqrt_psd(out[start:stop, l]) @ noise)
            out[start:stop, l + 1] = sb + sw * (a @ np.swapaxes(a, -1, -2)) / n
        bar.update(stop)
    bar.close()
    return out
