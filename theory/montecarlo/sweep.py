r"""Learning-rate sweeps: ensembles of abc-parameterized networks trained at every width × learning rate.

:func:`lr_sweep` trains, for each width n and each base learning rate η of a grid, an ensemble of networks of an
abc-parameterization (:mod:`theory.parameterizations`: SP, NTK, μP, mean field or any :func:`theory.abc`) for a
fixed number of steps of SGD or Adam (full batch or minibatches), on the mean squared error or the cross-entropy,
and records each network's final training (and test) loss. :meth:`Sweep.optimum` fits log loss against log₂ η
near its minimum and gives the optimal η per width with an interval; :meth:`Sweep.exponent` the width exponent
of the optimum. This is μTransfer (Yang et al. 2022, Tensor Programs V): under μP the optimum does not move with
the width, under SP with a width-independent grid it does.

The network of width n (:func:`network`): layer l has multiplier σ_l n^{-a_l}, initial weights N(0, n^{-2b_l}) and
learning rate η n^{-c_l} (:func:`theory.montecarlo.coordinate_check.abc_network`). With ``base_width`` n₀ the
width enters through n/n₀ relative to the standard parameterization: multiplier, init std and rate of layer l are
SP's at width n times (n/n₀)^{-(a_l - a^SP_l)}, (n/n₀)^{-(b_l - b^SP_l)}, (n/n₀)^{-(c_l - c^SP_l)}. The exponents
are p's, and at n = n₀ every parameterization is the same standard network (mup's base shapes), so a rate tuned
on the base network is the rate every width starts from. ``zero_readout`` initializes the last layer to 0 (f₀ = 0,
as mup recommends): the output's random initial function, of size n^{-1/2} under μP, then does not make narrow
networks noisier than wide ones.

Every network of a width draws its weights from the child seed (n, i) of ``seed`` (network i), the same for every
learning rate (common random numbers: the loss differences between rates are measured on the same networks), and
its minibatch order from the child seed (0, i), the same at every width. Losses: MSE L = (1/2B) Σ |f - y|², and
cross-entropy L = (1/B) Σ -y·log softmax(f), over the B points of a batch (B = D for full batch).

A network diverges when its loss becomes non-finite or exceeds ``blowup`` × L(f = 0) (the loss of the zero
function); it is then frozen (its weights set to zero and its rate to 0, so no NaN spreads through the ensemble),
recorded in :attr:`Sweep.diverged`, and its losses are +inf. Means and standard errors are over the networks that
did not diverge; the optimum is fitted only on rates at which none did.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.special
import scipy.stats

from .. import _validate
from .._progress import Progress
from .coordinate_check import _width_seed, abc_network
from .data import Task
from .mlp import MLP, _network_seed, _seed_sequence

__all__ = ["lr_sweep", "network", "Sweep", "Optimum", "Exponent", "quadratic_argmin", "LOSSES", "OPTIMIZERS"]

LOSSES = ("mse", "cross_entropy")
OPTIMIZERS = ("sgd", "adam")
_CHUNK_FLOATS = 2**19  # floats of one unit of work's training state (4 MB: a block that stays in cache is fastest)


# --------------------------------------------------------------------------------------------------------------
# The networks
# --------------------------------------------------------------------------------------------------------------


def network(p, d, width, out=1, base_width=None, zero_readout=False, activation="relu", sigma_w2=2.0):
    """``(mlp, rates)``: the width-``width`` network of parameterization ``p`` and its per-layer learning-rate
    factors (module docstring); ``base_width`` n₀ makes every parameterization the standard one at n = n₀."""
    from ..parameterizations import SP

    if p.free_symbols:
        raise ValueError(f"param: needs numeric exponents, got free symbols {sorted(map(str, p.free_symbols))}")
    a, b, c = (np.array([float(e) for e in v]) for v in (p.a, p.b, p.c))
    mlp, rates = abc_network(a, b, c, d, width, activation, sigma_w2)
    multipliers, stds = np.array(mlp.multipliers), np.array(mlp.init_stds)
    if base_width is not None:
        n0 = float(_validate.count(base_width, "base_width", 1))
        ref = SP(p.depth)
        a0, b0, c0 = (np.array([float(e) for e in v]) for v in (ref.a, ref.b, ref.c))
        multipliers, stds, rates = multipliers * n0 ** (a - a0), stds * n0 ** (b - b0), rates * n0 ** (c - c0)
    if zero_readout:
        stds[-1] = 0.0
    mlp = MLP(d, mlp.widths, activation, out=out, multipliers=multipliers, init_stds=stds)
    return mlp, np.array(rates, dtype=np.float64)


# --------------------------------------------------------------------------------------------------------------
# Losses and optimizers (batched over the ensemble axis E)
# --------------------------------------------------------------------------------------------------------------


def _loss(kind, f, Y):
    """(per-network loss (E,), ∂L/∂f (E, B, out)) for outputs f (E, B, out) and targets Y ((B, out) or (E, B, out))."""
    B = f.shape[-2]
    if kind == "mse":
        residual = f - Y
        return 0.5 * np.sum(residual**2, axis=(-2, -1)) / B, residual / B
    logp = scipy.special.log_softmax(f, axis=-1)
    return -np.sum(Y * logp, axis=(-2, -1)) / B, (np.exp(logp) - Y) / B


def _zero_loss(kind, Y):
    """The loss of the zero function on targets Y: the scale of :func:`lr_sweep`'s divergence threshold."""
    return float(_loss(kind, np.zeros((1,) + Y.shape), Y)[0][0])


class _SGD:
    """p ← p - rate · ∂L/∂p, per network and layer."""

    def step(self, params, grads, rates, t):
        for (W, b), (dW, db), rate in zip(params, grads, rates):
            dW *= rate[:, None, None]
            W -= dW
            db *= rate[:, None]
            b -= db

    def keep(self, mask):
        pass


class _Adam:
    """Adam (Kingma & Ba 2015) with bias correction, per network and layer: p ← p - rate · m̂ / (√v̂ + ε), computed as
    p ← p - rate (√(1 - β₂ᵗ)/(1 - β₁ᵗ)) m / (√v + ε √(1 - β₂ᵗ)) (the same number, fewer passes over the weights)."""

    def __init__(self, params, eps=1e-8, beta1=0.9, beta2=0.999):
        self.eps, self.beta1, self.beta2 = eps, beta1, beta2
        self.moments = [[(np.zeros_like(x), np.zeros_like(x)) for x in layer] for layer in params]

    def step(self, params, grads, rates, t):
        b1, b2 = self.beta1, self.beta2
        root = math.sqrt(1 - b2**t)
        for layer, dlayer, moments, rate in zip(params, grads, self.moments, rates):
            for x, g, (m, v) in zip(layer, dlayer, moments):
                buf = np.multiply(g, 1 - b1)
                m *= b1
                m += buf
                np.multiply(g, g, out=buf)
                buf *= 1 - b2
                v *= b2
                v += buf
                np.sqrt(v, out=buf)
                buf += self.eps * root
                np.divide(m, buf, out=buf)
                buf *= (rate * (root / (1 - b1**t))).reshape((-1,) + (1,) * (x.ndim - 1))
                x -= buf

    def keep(self, mask):
        """Drop the members where ``mask`` is False."""
        self.moments = [[(m[mask], v[mask]) for m, v in layer] for layer in self.moments]


# --------------------------------------------------------------------------------------------------------------
# One unit of work: one width, a block of (learning rate, network) members
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    param: object
    task: Task
    steps: int
    optimizer: str
    loss: str
    batch_size: int | None
    base_width: int | None
    zero_readout: bool
    activation: str
    sigma_w2: float
    eps: float
    blowup: float
    seed: np.random.SeedSequence


def _batches(cfg, network_ids):
    """Minibatch indices (steps, E_networks, B): network i's epochs are permutations from its child seed (0, i)."""
    D, B = cfg.task.X.shape[0], cfg.batch_size
    root = cfg.seed
    batch_root = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 0), pool_size=root.pool_size)
    epochs = -(-cfg.steps * B // D)
    out = np.empty((len(network_ids), cfg.steps, B), dtype=np.intp)
    for k, i in enumerate(network_ids):
        rng = np.random.default_rng(_network_seed(batch_root, int(i)))
        order = np.concatenate([rng.permutation(D) for _ in range(epochs)])
        out[k] = order[: cfg.steps * B].reshape(cfg.steps, B)
    return out.transpose(1, 0, 2)


def _train_unit(cfg, width, lrs, start, stop):
    """Train networks start..stop-1 of ``width`` at every rate of ``lrs``: (train, test, diverged), each (K, E).

    Member k·E + e trains network e at rate k. A member that diverges leaves the arrays (it costs nothing more and
    no inf or NaN reaches the others); its losses are +inf."""
    task = cfg.task
    mlp, factors = network(cfg.param, task.d, width, task.out, cfg.base_width, cfg.zero_readout, cfg.activation,
                           cfg.sigma_w2)
    E, K = stop - start, len(lrs)
    init = mlp.init(_width_seed(cfg.seed, width), E, start=start)
    params = [(np.tile(W, (K, 1, 1)), np.tile(b, (K, 1))) for W, b in init]
    eta = np.repeat(np.asarray(lrs, dtype=np.float64), E)
    rates = [eta * f for f in factors]
    opt = _SGD() if cfg.optimizer == "sgd" else _Adam(params, cfg.eps)
    threshold = cfg.blowup * _zero_loss(cfg.loss, task.Y)
    alive = np.arange(K * E)
    batches = None if cfg.batch_size is None else np.tile(_batches(cfg, range(start, stop)), (1, K, 1))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(1, cfg.steps + 1):
            if not alive.size:
                break
            if batches is None:
                X, Y = task.X, task.Y
            else:
                X, Y = task.X[batches[t - 1]], task.Y[batches[t - 1]]
            f, cache = mlp._forward(params, X)
            value, dloss = _loss(cfg.loss, f, Y)
            opt.step(params, mlp._grads(params, cache, dloss), rates, t)
            keep = value <= threshold  # False for inf and NaN too
            if not keep.all():
                alive, params, rates = alive[keep], [(W[keep], b[keep]) for W, b in params], [r[keep] for r in rates]
                opt.keep(keep)
                batches = None if batches is None else batches[:, keep]

        def final(X, Y):  # in blocks of members whose activations on all of X fit the unit's budget
            block = max(1, _CHUNK_FLOATS // (2 * X.shape[0] * (max(mlp.widths) + mlp.out)))
            out = np.full(K * E, np.inf)
            for i in range(0, alive.size, block):
                part = [(W[i:i + block], b[i:i + block]) for W, b in params]
                out[alive[i:i + block]] = _loss(cfg.loss, mlp._forward(part, X)[0], Y)[0]
            return out

        train = final(task.X, task.Y)
        diverged = ~(train <= threshold)
        train[diverged] = np.inf
        test = None
        if task.X_test is not None:
            test = final(task.X_test, task.Y_test)
            test[diverged] = np.inf
            test = test.reshape(K, E)
    return train.reshape(K, E), test, diverged.reshape(K, E)


# --------------------------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------------------------


def _floats_per_member(width, task, depth, optimizer, batch):
    """Floats one (rate, network) member holds: weights, gradients, Adam's two moments, activations of a batch."""
    shapes = [(width, task.d)] + [(width, width)] * (depth - 1) + [(task.out, width)]
    weights = sum(o * (i + 1) for o, i in shapes)
    copies = 2 + (2 if optimizer == "adam" else 0)
    return copies * weights + 4 * batch * width * depth


def _units(widths, lrs, networks, cfg):
    """(width, rate indices, start, stop) blocks of at most _CHUNK_FLOATS floats each."""
    out = []
    batch = cfg.batch_size or cfg.task.X.shape[0]
    for n in widths:
        members = max(1, _CHUNK_FLOATS // _floats_per_member(n, cfg.task, cfg.param.depth, cfg.optimizer, batch))
        per_lr = min(networks, members)
        lr_block = max(1, members // per_lr) if per_lr == networks else 1
        for k in range(0, len(lrs), lr_block):
            for start in range(0, networks, per_lr):
                out.append((int(n), list(range(k, min(k + lr_block, len(lrs)))), start, min(start + per_lr, networks)))
    return out


def _run_unit(cfg, width, lrs, start, stop):
    return _train_unit(cfg, width, lrs, start, stop)


def lr_sweep(param, widths, lrs, data, steps, networks=4, seed=0, optimizer=None, loss="mse", batch_size=None,
             base_width=None, zero_readout=False, activation="relu", sigma_w2=2.0, eps=1e-8, blowup=1e6,
             executor=None, progress=False):
    """Train ``networks`` networks of ``param`` at every width × base learning rate; returns a :class:`Sweep`.

    ``param``: a :class:`theory.parameterizations.Parameterization` with numeric exponents (e.g. ``MUP(2)``);
    ``widths``: integers >= 1; ``lrs``: base learning rates η > 0 (layer l trains at η times its factor, see the
    module); ``data``: a :class:`Task`; ``steps``: optimizer steps; ``optimizer``: "sgd" or "adam" (default:
    the parameterization's); ``loss``: "mse" or "cross_entropy"; ``batch_size``: None (full batch) or B <= D;
    ``base_width``, ``zero_readout``: see the module; ``eps``: Adam's ε; ``blowup``: the divergence threshold in
    units of the zero function's loss. ``executor`` (a ``concurrent.futures.Executor``, e.g. from
    :func:`theory.distributed.executor`: local processes or a Dask cluster) runs the units of work (a width and a
    block of members, at most ~64 MB each) in parallel; ``progress`` draws a bar over them.
    """
    if not isinstance(data, Task):
        raise TypeError(f"data: expected a theory.montecarlo.data.Task, got {type(data).__name__}")
    for attr in ("a", "b", "c", "optimizer", "depth"):
        if not hasattr(param, attr):
            raise TypeError(f"param: expected a theory.parameterizations.Parameterization, got {type(param).__name__}")
    optimizer = param.optimizer if optimizer is None else optimizer
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
    if loss == "cross_entropy" and (data.out < 2 or np.any(data.Y < 0)
                                    or not np.allclose(data.Y.sum(axis=1), 1.0, atol=1e-12)):
        raise ValueError("data: the cross-entropy needs Y of shape (D, C >= 2) with rows of class probabilities")
    widths = np.array([_validate.count(w, f"widths[{i}]", 1) for i, w in enumerate(widths)], dtype=int)
    if widths.size == 0:
        raise ValueError("widths: expected at least one width")
    lrs = np.asarray(lrs, dtype=np.float64)
    if lrs.ndim != 1 or lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError(f"lrs: expected a 1-D array of finite learning rates > 0, got {lrs!r}")
    steps = _validate.count(steps, "steps", 1)
    networks = _validate.count(networks, "networks", 1)
    if batch_size is not None:
        batch_size = _validate.count(batch_size, "batch_size", 1)
        if batch_size > data.X.shape[0]:
            raise ValueError(f"batch_size: expected at most D = {data.X.shape[0]}, got {batch_size}")
    eps = _validate.variance(eps, "eps")
    blowup = _validate.variance(blowup, "blowup", positive=True)
    cfg = _Config(param, data, steps, optimizer, loss, batch_size, base_width, bool(zero_readout), activation,
                  _validate.variance(sigma_w2, "sigma_w2"), eps, blowup, _seed_sequence(seed))
    network(param, data.d, int(widths[0]), data.out, base_width, zero_readout, activation, sigma_w2)  # checks early
    units = _units(widths, lrs, networks, cfg)
    K, E = len(lrs), networks
    train = np.empty((len(widths), K, E))
    test = None if data.X_test is None else np.empty((len(widths), K, E))
    diverged = np.empty((len(widths), K, E), dtype=bool)
    row = {int(n): i for i, n in enumerate(widths)}
    bar = Progress(len(units), "lr sweep", enabled=progress)

    def store(unit, outcome):
        n, ks, start, stop = unit
        tr, te, dv = outcome
        train[row[n], ks, start:stop], diverged[row[n], ks, start:stop] = tr, dv
        if test is not None:
            test[row[n], ks, start:stop] = te

    if executor is None:
        for done, unit in enumerate(units, 1):
            store(unit, _run_unit(cfg, unit[0], lrs[unit[1]], unit[2], unit[3]))
            bar.update(done, f"width {unit[0]}")
    else:
        import concurrent.futures

        futures = {executor.submit(_run_unit, cfg, u[0], lrs[u[1]], u[2], u[3]): u for u in units}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            store(futures[future], future.result())
            bar.update(done, f"width {futures[future][0]}")
    bar.close()
    return Sweep(widths, lrs, train, test, diverged, getattr(param, "name", "abc"), optimizer, loss, steps)


# --------------------------------------------------------------------------------------------------------------
# The optimum: a quadratic in log₂ η, its argmin with a Fieller interval
# --------------------------------------------------------------------------------------------------------------


def quadratic_argmin(x, samples, level=0.95):
    r"""The minimum of a quadratic y = β₀ + β₁u + β₂u² (u = x - x̄) fitted to the mean of ``samples`` (E, K).

    Each row (a network) is fitted by least squares; the coefficients' covariance is the sample covariance of the
    E per-row fits over E, so errors correlated between the K points (the same networks at every x) are handled.
    The argmin x* = x̄ - β₁/(2β₂) gets Fieller's interval {x: (β₁ + 2β₂u)² <= q² Var(β₁ + 2β₂u)} with q the
    Student-t quantile on E - 1 degrees of freedom (exact for Gaussian fits); it is unbounded when the curvature
    is not significant. Returns ``(x*, delta-method SE, (low, high), fitted minimum y, its SE)``.
    """
    x, samples = np.asarray(x, dtype=np.float64), np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] != x.size or x.size < 3 or samples.shape[0] < 2:
        raise ValueError(f"samples: expected shape (E >= 2, K >= 3) with K = len(x), got {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("samples: expected finite values (drop diverged runs first)")
    centre = x.mean()
    u = x - centre
    design = np.stack([np.ones_like(u), u, u * u], axis=1)
    coef = np.linalg.lstsq(design, samples.T, rcond=None)[0].T  # (E, 3)
    E = coef.shape[0]
    beta = coef.mean(axis=0)
    V = np.cov(coef, rowvar=False, ddof=1) / E
    q = scipy.stats.t.ppf(0.5 + level / 2, E - 1)
    b1, b2 = beta[1], beta[2]
    star = -b1 / (2 * b2) if b2 != 0 else math.nan
    var_star = (V[1, 1] + 4 * star * V[1, 2] + 4 * star**2 * V[2, 2]) / (4 * b2**2) if b2 != 0 else math.inf
    A = 4 * (b2**2 - q**2 * V[2, 2])
    Bq = 4 * (b1 * b2 - q**2 * V[1, 2])
    C = b1**2 - q**2 * V[1, 1]
    disc = Bq * Bq - 4 * A * C
    if b2 > 0 and A > 0 and disc >= 0:
        root = math.sqrt(disc)
        interval = ((-Bq - root) / (2 * A) + centre, (-Bq + root) / (2 * A) + centre)
    else:
        interval = (-math.inf, math.inf)
    grad = np.array([1.0, star, star * star])
    y_min = float(grad @ beta)
    y_se = float(np.sqrt(max(grad @ V @ grad, 0.0)))
    return float(star + centre), float(np.sqrt(max(var_star, 0.0))), interval, y_min, y_se


@dataclass(frozen=True)
class Optimum:
    """The fitted optimum per width: ``log2_lr`` (W,), its delta-method ``se``, ``interval`` (W, 2) (level
    ``level``; infinite where the curvature is not significant), ``loss`` the fitted minimal loss and ``loss_se``;
    ``bracketed`` is False where the grid's best rate is at its edge (or at the last rate below a divergence);
    ``fitted`` is True where the fitted quadratic has positive curvature and its minimum inside its window (a flat
    or noisy curve can give a maximum, or a minimum far outside the rates it was fitted on)."""

    widths: np.ndarray
    log2_lr: np.ndarray
    se: np.ndarray
    interval: np.ndarray
    loss: np.ndarray
    loss_se: np.ndarray
    bracketed: np.ndarray
    fitted: np.ndarray
    windows: list
    level: float

    @property
    def lr(self):
        return 2.0**self.log2_lr


@dataclass(frozen=True)
class Exponent:
    """The width exponent s of the optimum, log₂ η* = α + s log₂ n, by weighted least squares; ``interval``."""

    slope: float
    se: float
    interval: tuple
    intercept: float
    chi2_dof: float


@dataclass(frozen=True)
class Sweep:
    """The losses of a :func:`lr_sweep`: ``train``, ``test`` (or None) and ``diverged`` of shape (W, K, E) for
    W widths, K learning rates and E networks (diverged networks' losses are +inf)."""

    widths: np.ndarray
    lrs: np.ndarray
    train: np.ndarray
    test: np.ndarray | None
    diverged: np.ndarray
    name: str = "abc"
    optimizer: str = "sgd"
    loss: str = "mse"
    steps: int = 0
    meta: dict = field(default_factory=dict)

    def _values(self, which):
        if which not in ("train", "test"):
            raise ValueError(f"which: expected 'train' or 'test', got {which!r}")
        values = getattr(self, which)
        if values is None:
            raise ValueError("which: this sweep has no test set")
        return values

    def mean(self, which="train"):
        """(mean, SE, survivors) per width and rate, over the networks that did not diverge (mean +inf and SE NaN
        where all diverged; SE NaN with a single survivor)."""
        values = self._values(which)
        ok = ~self.diverged
        count = ok.sum(axis=-1)
        total = np.where(ok, values, 0.0).sum(axis=-1)
        mean = np.divide(total, count, out=np.full(count.shape, np.inf), where=count > 0)
        dev = np.where(ok, np.where(ok, values, 0.0) - np.where(count > 0, mean, 0.0)[..., None], 0.0)
        var = np.divide((dev**2).sum(axis=-1), count - 1, out=np.full(count.shape, np.nan), where=count > 1)
        return mean, np.sqrt(var / np.maximum(count, 1)), count

    def max_stable_lr(self):
        """The largest rate of the grid at which no network diverged, per width (NaN if none)."""
        ok = ~self.diverged.any(axis=-1)
        return np.array([self.lrs[row].max() if row.any() else np.nan for row in ok])

    def optimum(self, which="train", window=5, level=0.95):
        """Fit log loss against log₂ η over ``window`` consecutive rates around each width's best rate, among the
        rates at which no network diverged (:func:`quadratic_argmin`): an :class:`Optimum`."""
        values = self._values(which)
        window = _validate.count(window, "window", 3)
        x = np.log2(self.lrs)
        stars, ses, intervals, losses, loss_ses, bracketed, windows, fitted = [], [], [], [], [], [], [], []
        for w in range(len(self.widths)):
            bad = self.diverged[w].any(axis=-1)
            usable = np.arange(int(np.argmax(bad)) if bad.any() else bad.size)  # the rates below the first divergence
            if usable.size < window or self.diverged.shape[-1] < 2:
                stars.append(math.nan), ses.append(math.nan), intervals.append((-math.inf, math.inf))
                losses.append(math.nan), loss_ses.append(math.nan), bracketed.append(False), windows.append([])
                fitted.append(False)
                continue
            logs = np.log(values[w][usable])
            best = int(np.argmin(logs.mean(axis=-1)))
            lo = min(max(best - window // 2, 0), usable.size - window)
            idx = usable[lo:lo + window]
            star, se, interval, y_min, y_se = quadratic_argmin(x[idx], logs[lo:lo + window].T, level)
            inside = 0 < best < usable.size - 1
            stars.append(star), ses.append(se), intervals.append(interval)
            losses.append(math.exp(y_min)), loss_ses.append(math.exp(y_min) * y_se), bracketed.append(bool(inside))
            windows.append(list(idx))
            ends = logs[lo:lo + window].mean(axis=-1)[[0, -1]]  # a maximum lies above the window's ends
            fitted.append(bool(x[idx[0]] <= star <= x[idx[-1]] and y_min < ends.min()))
        return Optimum(self.widths, np.array(stars), np.array(ses), np.array(intervals), np.array(losses),
                       np.array(loss_ses), np.array(bracketed), np.array(fitted), windows, level)

    def exponent(self, which="train", window=5, level=0.95):
        """The width exponent of the optimal rate (an :class:`Exponent`): log₂ η* against log₂ n weighted by
        1/SE², with the slope's SE scaled by √(χ²/dof) when the points scatter more than their errors say."""
        opt = self.optimum(which, window, level)
        good = opt.bracketed & opt.fitted & np.isfinite(opt.se) & (opt.se > 0)
        if good.sum() < 3:
            raise ValueError(f"exponent: the optimum is bracketed at only {int(good.sum())} widths (need 3); widen "
                             "the learning-rate grid")
        return _weighted_slope(np.log2(self.widths[good]), opt.log2_lr[good], opt.se[good], level)

    def figure(self, ax=None, which="train", label=None):
        """Loss against log₂ η, one curve per width (Tensor Programs V, Fig. 1), into a matplotlib Axes (a new
        Figure without pyplot state when ``ax`` is None); rates where a network diverged are left out."""
        fig = None
        if ax is None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(5, 3.6), layout="constrained")
            ax = fig.add_subplot()
        mean, se, _ = self.mean(which)
        ok = ~self.diverged.any(axis=-1)
        colors = _colors(len(self.widths))
        opt = self.optimum(which)
        for w, n in enumerate(self.widths):
            x = np.log2(self.lrs)[ok[w]]
            ax.errorbar(x, mean[w][ok[w]], yerr=se[w][ok[w]], color=colors[w], marker="o", ms=2.5, lw=1.2,
                        capsize=1.5, label=f"{n}")
            if opt.bracketed[w] and opt.fitted[w]:
                ax.axvline(opt.log2_lr[w], color=colors[w], lw=0.6, ls=":")
        start = mean[:, 0][np.isfinite(mean[:, 0])]
        if start.size:  # blown-up (finite) losses above the edge would squash the valleys: clip at 3x the start
            ax.set_ylim(top=min(ax.get_ylim()[1], 3 * start.max()))
        ax.set(yscale="log", xlabel=r"$\log_2$ learning rate", ylabel=f"{which} loss after {self.steps} steps",
               title=label or f"{self.name} ({self.optimizer})")
        ax.legend(title="width", fontsize=7, title_fontsize=7)
        return fig if fig is not None else ax


def _colors(k):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.1 + 0.8 * i / max(k - 1, 1)) for i in range(k)]


def _weighted_slope(x, y, se, level):
    design = np.stack([np.ones_like(x), x], axis=1)
    w = 1.0 / se**2
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    coef = cov @ design.T @ (w * y)
    dof = len(x) - 2
    chi2 = float(np.sum(w * (y - design @ coef) ** 2)) / max(dof, 1)
    slope_se = float(np.sqrt(cov[1, 1] * max(1.0, chi2)))
    q = scipy.stats.t.ppf(0.5 + level / 2, max(dof, 1)) if chi2 > 1 else scipy.stats.norm.ppf(0.5 + level / 2)
    return Exponent(float(coef[1]), slope_se, (float(coef[1] - q * slope_se), float(coef[1] + q * slope_se)),
                    float(coef[0]), chi2)
