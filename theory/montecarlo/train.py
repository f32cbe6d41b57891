r"""Full-batch gradient descent of an ensemble of finite networks on the mean squared error.

Loss L = (1/2D) Σ_{α ≤ D} |f(x_α) - y_α|² (D training points; the 1/D is the one of the lecture notes, so that in
function space df/dt = -(1/D) Θ (f - y)). Each step is θ ← θ - η_l ∂L/∂θ with a learning rate per layer (one
number for all layers in the NTK and standard parameterizations; per-layer rates for abc-parameterizations).
"""

from dataclasses import dataclass

import numpy as np

from .. import _validate
from .._progress import Progress

__all__ = ["Trajectory", "train"]


@dataclass(frozen=True)
class Trajectory:
    """What :func:`train` recorded, at the steps in ``steps`` (step 0 is the initialization).

    ``f_train`` (T, E, D, out) and ``f_test`` (T, E, M, out) are the outputs, ``loss`` (T, E) the training loss of
    each network, ``params`` the final parameters.
    """

    steps: np.ndarray
    f_train: np.ndarray
    f_test: np.ndarray | None
    loss: np.ndarray
    params: list


def _rates(lr, depth):
    rates = np.broadcast_to(np.asarray(lr, dtype=np.float64), (depth + 1,)) if np.ndim(lr) == 0 else np.asarray(
        lr, dtype=np.float64)
    if rates.shape != (depth + 1,) or not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise ValueError(f"lr: expected a learning rate >= 0 or one per layer ({depth + 1}), got {lr!r}")
    return rates


def train(mlp, params, X, Y, lr, steps, X_test=None, record_every=1, progress=False):
    """Train every network of the ensemble ``params`` (not modified) for ``steps`` steps of gradient descent.

    ``X`` (D, d) and ``Y`` (D, out) are the training set, ``lr`` a learning rate or one per layer, ``X_test`` (M, d)
    optional test inputs. Outputs and losses are recorded every ``record_every`` steps and at the last step.
    Diverging networks are not stopped: their losses become inf or NaN, which callers can read as divergence.
    """
    X = _validate.inputs(X, "X", d=mlp.d, d_name="the network's input dimension d =")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.shape != (X.shape[0], mlp.out):
        raise ValueError(f"Y: expected shape {(X.shape[0], mlp.out)} (D, out), got {Y.shape}")
    steps = _validate.count(steps, "steps")
    record_every = _validate.count(record_every, "record_every", 1)
    rates = _rates(lr, mlp.depth)
    params = [(W.copy(), b.copy()) for W, b in params]
    D = X.shape[0]
    recorded, f_train, f_test, loss = [], [], [], []
    bar = Progress(steps, "steps", enabled=progress)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            f, cache = mlp.forward(params, X)
            residual = f - Y
            if t % record_every == 0 or t == steps:
                recorded.append(t)
                f_train.append(f)
                f_test.append(None if X_test is None else mlp.apply(params, X_test))
                loss.append(0.5 * np.sum(residual**2, axis=(1, 2)) / D)
            if t == steps:
                break
            grads = mlp._grads(params, cache, residual / D)  # reuses this step's forward pass
            params = [(W - eta * dW, b - eta * db) for (W, b), (dW, db), eta in zip(params, grads, rates)]
            bar.update(t + 1)
    bar.close()
    return Trajectory(np.array(recorded), np.array(f_train), None if X_test is None else np.array(f_test),
                      np.array(loss), params)
