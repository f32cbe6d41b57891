r"""Small training tasks for learning-rate sweeps: a student–teacher task and scikit-learn's bundled digits.

A :class:`Task` holds training inputs X (D, d) and targets Y (D, out), optional test inputs and targets. For the
cross-entropy loss Y holds one-hot rows (class probabilities); for the mean squared error any real targets.
Inputs lie on the sphere |x|² = d, the scale at which every layer of :mod:`theory.montecarlo.mlp` is calibrated.
"""

from dataclasses import dataclass

import numpy as np

from .. import _validate
from .mlp import MLP, _seed_sequence

__all__ = ["Task", "teacher", "digits"]


@dataclass(frozen=True)
class Task:
    """Training inputs ``X`` (D, d) and targets ``Y`` (D, out); ``X_test`` (M, d), ``Y_test`` (M, out) or None."""

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray | None = None
    Y_test: np.ndarray | None = None
    name: str = "task"

    def __post_init__(self):
        X = _validate.inputs(self.X, "X")
        Y = _targets(self.Y, X.shape[0], "Y")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "Y", Y)
        if (self.X_test is None) != (self.Y_test is None):
            raise ValueError("X_test, Y_test: give both or neither")
        if self.X_test is not None:
            X_test = _validate.inputs(self.X_test, "X_test", d=X.shape[1], d_name="the training inputs' dimension")
            Y_test = _targets(self.Y_test, X_test.shape[0], "Y_test")
            if Y_test.shape[1] != Y.shape[1]:
                raise ValueError(f"Y_test: expected {Y.shape[1]} outputs like Y, got {Y_test.shape[1]}")
            object.__setattr__(self, "X_test", X_test)
            object.__setattr__(self, "Y_test", Y_test)

    @property
    def d(self):
        return self.X.shape[1]

    @property
    def out(self):
        return self.Y.shape[1]


def _targets(Y, rows, name):
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != rows or Y.shape[1] == 0 or not np.all(np.isfinite(Y)):
        raise ValueError(f"{name}: expected finite targets of shape ({rows}, out), got shape {Y.shape}")
    return Y


def _sphere(x):
    """Rows scaled to |x|² = d (a zero row stays zero)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x * np.sqrt(x.shape[1]), norm, out=np.zeros_like(x), where=norm > 0)


def _one_hot(labels, classes):
    return np.eye(classes)[labels]


def teacher(d=16, train=256, test=256, width=256, classes=None, activation="tanh", seed=0):
    r"""A student–teacher task: inputs uniform on the sphere |x|² = d, targets from one random teacher network.

    The teacher is a one-hidden-layer ``activation`` network of ``width`` units in the NTK parameterization
    (σ_w² = 2). Regression (``classes=None``): the targets are its output, scaled to unit mean square over the
    training set. Classification (``classes`` = C >= 2 outputs): one-hot labels of the teacher's largest logit.
    """
    d, train = _validate.count(d, "d", 1), _validate.count(train, "train", 1)
    test, width = _validate.count(test, "test"), _validate.count(width, "width", 1)
    if classes is not None:
        classes = _validate.count(classes, "classes", 2)
    root = _seed_sequence(seed)
    rng = np.random.default_rng(root)
    X = _sphere(rng.standard_normal((train + test, d)))
    net = MLP(d, (width,), activation, out=classes or 1, sigma_w2=2.0)
    f = net.apply(net.init(np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 1))), X)[0]
    if classes is None:
        Y = f / np.sqrt(np.mean(f[:train] ** 2))
        name = f"teacher(d={d}, {activation} width {width})"
    else:
        Y = _one_hot(np.argmax(f, axis=1), classes)
        name = f"teacher(d={d}, {classes} classes)"
    return Task(X[:train], Y[:train], X[train:] if test else None, Y[train:] if test else None, name)


def digits(train=1000, classes=10, seed=0):
    """scikit-learn's bundled handwritten digits (1,797 8×8 images, no download): a real classification task.

    The first ``classes`` digits are kept; images are centred by the training mean and scaled to |x|² = 64;
    ``train`` images drawn at random (``seed``) form the training set, the rest the test set. Y is one-hot (for the
    cross-entropy; the mean squared error on one-hot targets works too). Needs scikit-learn (``theory[data]``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("digits needs scikit-learn, which ships the data set: pip install 'theory[data]'") from err
    classes = _validate.count(classes, "classes", 2)
    if classes > 10:
        raise ValueError(f"classes: expected an integer in [2, 10], got {classes}")
    images, labels = load_digits(return_X_y=True)
    keep = labels < classes
    images, labels = images[keep].astype(np.float64), labels[keep]
    train = _validate.count(train, "train", 1)
    if train > len(labels):
        raise ValueError(f"train: expected at most {len(labels)} images ({classes} classes), got {train}")
    order = np.random.default_rng(_seed_sequence(seed)).permutation(len(labels))
    images, labels = images[order], labels[order]
    X = _sphere(images - images[:train].mean(axis=0))
    Y = _one_hot(labels, classes)
    rest = train < len(labels)
    return Task(X[:train], Y[:train], X[train:] if rest else None, Y[train:] if rest else None,
                f"digits ({classes} classes)")
