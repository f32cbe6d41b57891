r"""The coordinate check: finite abc-parameterized networks trained a few steps, their coordinate sizes per layer.

An abc-network of width n (Yang & Hu 2021) is an :class:`~theory.montecarlo.MLP` with multipliers m_l = σ_l n^{-a_l}
and init_stds n^{-b_l} (so W^l = m_l w^l with w^l ~ N(0, n^{-2b_l})), trained on L = (1/2D) Σ_α |f(x_α) - y_α|² by
full-batch SGD or Adam with per-layer learning rates η n^{-c_l}. σ_1 = σ_w/√d (the fixed input dimension enters as a
constant) and σ_l = σ_w for l >= 2, so that the NTK parameterization's network is :class:`MLP`'s default; biases
are off. The measurement is the mean |coordinate| of h^l at initialization, of Δh^l = h^l_t - h^l_0 and of
Δf = f_t - f_0 after each step, per network: a log-log slope against n is the exponent that the scaling calculus
of :mod:`theory.parameterizations` predicts.

Every setup at a width trains the same networks: the unit Gaussians behind w are drawn once per width (network i
from the child seed i, as :meth:`MLP.init` does) and scaled by n^{-b_l}, so parameterizations related by the abc
symmetry train identical functions.
"""

from dataclasses import dataclass

import numpy as np

from .. import _validate
from .mlp import MLP, _seed_sequence

__all__ = ["abc_network", "CoordinateCheck", "coordinate_check"]

_CHUNK_FLOATS = 8 * 2**20  # parameters of the networks trained at once (~64 MB per copy)


def abc_network(a, b, c, d, width, activation="relu", sigma_w2=2.0):
    """``(mlp, rates)``: the width-``width`` MLP of exponents a, b (L + 1 each), and the learning-rate factors
    n^{-c_l} (c: one value or L + 1)."""
    try:
        a, b, c = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    except (TypeError, ValueError) as err:
        raise TypeError(f"a, b, c: expected numeric exponents ({err})") from None
    if a.ndim != 1 or a.shape != b.shape or a.size < 2 or c.shape not in ((), a.shape):
        raise ValueError(f"a, b, c: expected L + 1 >= 2 exponents each (c: or one), got {a.size}, {b.size}, {c.size}")
    width = _validate.count(width, "width", 1)
    d = _validate.count(d, "d", 1)
    sw = np.sqrt(_validate.variance(sigma_w2, "sigma_w2"))
    depth = a.size - 1
    scale = np.array([sw / np.sqrt(d)] + [sw] * depth)
    mlp = MLP(d, (width,) * depth, activation, out=1, multipliers=scale * float(width) ** -a,
              init_stds=float(width) ** -b)
    return mlp, np.broadcast_to(float(width) ** -c, a.shape)


@dataclass(frozen=True)
class CoordinateCheck:
    """Per-network coordinate sizes of one setup at several widths (W widths, E networks, T steps, L layers).

    ``h`` (W, E, L): mean |h^l_0|; ``dh`` (W, E, T, L): mean |h^l_t - h^l_0|; ``df`` (W, E, T): mean over inputs
    of |f_t - f_0|; ``f`` (W, E, T + 1, D): the outputs on the D training inputs at steps 0..T.
    """

    widths: np.ndarray
    h: np.ndarray
    dh: np.ndarray
    df: np.ndarray
    f: np.ndarray


def _adam(rates, eps, beta1=0.9, beta2=0.999):
    """Adam (Kingma & Ba 2015) with bias correction; eps = 0 makes it exactly invariant to the gradient's scale
    (a zero gradient then gives a zero step). Returns ``step(params, grads, t)``, updating in place."""
    moments = {}

    def step(params, grads, t):
        for l, ((W, b), (dW, db), rate) in enumerate(zip(params, grads, rates)):
            for k, (p, g) in enumerate(((W, dW), (b, db))):
                m, v = moments.setdefault((l, k), (np.zeros_like(p), np.zeros_like(p)))
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                denom = np.sqrt(v / (1 - beta2**t)) + eps
                p -= rate * np.divide(m / (1 - beta1**t), denom, out=np.zeros_like(p), where=denom > 0)

    return step


def _sgd(rates):
    def step(params, grads, t):
        for (W, b), (dW, db), rate in zip(params, grads, rates):
            W -= rate * dW
            b -= rate * db

    return step


def _train(mlp, params, X, Y, rates, steps, optimizer, eps, center):
    """Train in place; returns (h, dh, df, f) of the chunk: shapes (E, L), (E, T, L), (E, T), (E, T + 1, D)."""
    D = X.shape[0]
    f0, cache = mlp.forward(params, X)
    target = Y + f0 if center else Y
    h0 = cache.pre
    step = _sgd(rates) if optimizer == "sgd" else _adam(rates, eps)
    f, dh, df, outputs = f0, [], [], [f0[..., 0]]
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            step(params, mlp._grads(params, cache, (f - target) / D), t)  # reuses the last forward pass
            f, cache = mlp.forward(params, X)
            dh.append([np.abs(z - z0).mean(axis=(1, 2)) for z, z0 in zip(cache.pre, h0)])
            df.append(np.abs(f - f0).mean(axis=(1, 2)))
            outputs.append(f[..., 0])
    h = np.stack([np.abs(z).mean(axis=(1, 2)) for z in h0], axis=-1)
    return h, np.transpose(np.array(dh), (2, 0, 1)), np.array(df).T, np.stack(outputs, axis=1)


def coordinate_check(setups, X, Y, widths, steps=3, networks=8, seed=0, activation="relu", sigma_w2=2.0,
                     center=True, eps=0.0):
    """Train every setup at every width and measure its coordinate sizes: {name: :class:`CoordinateCheck`}.

    ``setups`` maps a name to ``(p, lr)``: p has numeric exponent sequences ``a``, ``b``, ``c`` (or a common c) and an
    ``optimizer`` ("sgd" or "adam"), e.g. a :class:`theory.parameterizations.Parameterization`; lr is η. ``X`` (D, d)
    and ``Y`` (D,) or (D, 1) are the training set. With ``center=True`` the target is y + f_0, so the first residual
    is -y in every network (the sizes, and their exponents, are those of training on y when f_0 = O(1)).
    ``eps`` is Adam's ε (0: exactly scale-invariant updates, as the abc symmetry needs).
    """
    X = _validate.inputs(X, "X")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.size != X.shape[0] or not np.all(np.isfinite(Y)):
        raise ValueError(f"Y: expected {X.shape[0]} finite targets (one per input), got shape {Y.shape}")
    Y = Y.reshape(-1, 1)
    widths = np.array([_validate.count(w, f"widths[{i}]", 1) for i, w in enumerate(widths)])
    steps = _validate.count(steps, "steps", 1)
    networks = _validate.count(networks, "networks", 2)
    root = _seed_sequence(seed)
    for name, (p, lr) in setups.items():
        if p.optimizer not in ("sgd", "adam"):
            raise ValueError(f"setups[{name!r}]: optimizer must be 'sgd' or 'adam', got {p.optimizer!r}")
        _validate.variance(lr, f"setups[{name!r}] learning rate", positive=True)
    out = {name: [] for name in setups}
    for n in widths:
        parts = {name: [] for name in setups}
        chunk = max(1, _CHUNK_FLOATS // int(n) ** 2)
        for start in range(0, networks, chunk):
            count = min(chunk, networks - start)
            units = {}
            for name, (p, lr) in setups.items():
                mlp, rates = abc_network(p.a, p.b, p.c, X.shape[1], int(n), activation, sigma_w2)
                if mlp.depth not in units:  # the same unit Gaussians for every setup of this depth
                    units[mlp.depth] = MLP(mlp.d, mlp.widths, activation, multipliers=mlp.multipliers).init(
                        _width_seed(root, n), count, start=start)
                params = [(W * s, b.copy()) for (W, b), s in zip(units[mlp.depth], mlp.init_stds)]
                parts[name].append(_train(mlp, params, X, Y, lr * rates, steps, p.optimizer, eps, center))
        for name in setups:
            out[name].append([np.concatenate(x) for x in zip(*parts[name])])
    return {name: CoordinateCheck(widths, *(np.stack(x) for x in zip(*rows))) for name, rows in out.items()}


def _width_seed(root, n):
    """The seed of the networks of width n: a child of ``root`` keyed by n."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, int(n)), pool_size=root.pool_size)
