r"""The Deep Bootstrap (Nakkiran, Neyshabur & Sedghi 2021) in solvable toys: the Real World against the Ideal World.

Linear toy: f_β(x) = ⟨β, x⟩ with x ~ N(0, V), V = I_d/d (so |x|² ≈ 1), labels y = σ(⟨β*, x⟩) with |β*|² = d (so
u = ⟨β*, x⟩ ~ N(0, 1)), square loss, SGD from β = 0 with batch size b and learning rate η. The **Real World** draws
its minibatches from n fixed samples (reused); the **Ideal World** draws fresh samples at every step. The
**stopping time** T(n) is the first step at which the Real World's mean train loss has come within 1% of its floor
(the least-squares minimum), measured from its start. The **bootstrap error** is the gap between the two worlds'
test errors at T(n).

The test error of β is exact: with (u, v = ⟨β, x⟩) Gaussian, E[(v - σ(u))²] = q22 - 2⟨σ(u) v⟩ + ⟨σ(u)²⟩ with
q11 = β*ᵀVβ*, q12 = β*ᵀVβ, q22 = βᵀVβ (:func:`test_error`, from :func:`theory.gaussian_expectation`).

Predictions (:func:`predictions`):

* σ(x) = x, n < d: the Real World converges to the min-norm interpolant, whose test error is the ridgeless risk
  r²(1 - n/d) (γ = d/n, no noise; :func:`theory.double_descent.ridgeless_formula`), while the Ideal World's error
  falls like ρ^t, ρ = 1 - 2η/d + η²(1 + (d + 1)/b)/d² (derived from the update and Isserlis' theorem,
  :func:`ideal_world_rate`). The bootstrap error is large: the whole ridgeless risk.
* σ = sign, n > d + 1: the best linear predictor is cβ* with c = E[σ(u)u], leaving the misspecification error
  s² = E σ(u)² - c²; the Real World converges to least squares, s² (1 + d/(n - d - 1)) (the finite-n formula with
  σ² = s², up to O(1/n) because the residual depends on u), the Ideal World to s² (as η -> 0). The bootstrap error
  s² d/(n - d - 1) is a small fraction d/(n - 1) of the test error.

Kernel version (:func:`kernel_worlds`): gradient descent in function space with a kernel Θ (the infinite-width
NTK dynamics) from f = 0, on a target drawn from the Gaussian process with the same kernel. Real World: n samples,
f_{t+1} = f_t - (η/n) Θ(·, X)(f_t(X) - y). Ideal World: the population gradient, whose residual contracts by
(1 - ημ_k) in each Funk-Hecke eigenspace, so its test error is Σ_k N(d, k) μ_k (1 - ημ_k)^{2t} (:func:`ideal_kernel_error`).
"""

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import sympy as sp

from . import _validate
from .activations import activation as _activation
from .derive import Option, topic
from .double_descent import p, r2, ridgeless_formula, sigma2
from .gaussian import gaussian_expectation
from .numeric import lambdify
from .scaling import d
from .symbols import eta, n, q11, q12, q22, t

__all__ = ["b", "d", "test_error", "ideal_world_rate", "misspecification", "predictions", "Worlds",
           "linear_worlds", "stopping_time", "ideal_kernel_error", "kernel_worlds"]

#: Batch size b of the linear toy (its input dimension is the d of :mod:`theory.scaling`).
b = sp.Symbol("b", positive=True, integer=True)


@lru_cache(maxsize=16)
def test_error(activation):
    """E[(⟨β, x⟩ - σ(⟨β*, x⟩))²] in q11 = β*ᵀVβ*, q12 = β*ᵀVβ, q22 = βᵀVβ (exact for Gaussian x)."""
    act = _activation(activation)
    return sp.simplify(q22 - 2 * gaussian_expectation(act, "identity") + gaussian_expectation(act, act).xreplace(
        {q12: q11, q22: q11}))


@lru_cache(maxsize=1)
def ideal_world_rate():
    """ρ with E|β_{t+1} - β*|² = ρ E|β_t - β*|² for online SGD on σ(x) = x, x ~ N(0, I/d), batch b.

    From e' = (I - ηĈ)e, Ĉ = (1/b) Σ x xᵀ: E[Ĉ] = I/d, and by Isserlis' theorem E[(xᵀe)² |x|²] = (d + 2)|e|²/d², so
    E[Ĉ²] = ((d + 2)/b + (1 - 1/b))/d² · I. Derived on the coordinates (u, z) with e along the first axis.
    """
    u, z = sp.symbols("u z", real=True)
    var = 1 / d
    fourth = {u**4: 3 * var**2, u**2 * z**2: var**2, u**2: var}  # Gaussian moments (u, z independent, variance 1/d)
    # E[(xᵀe)² |x|²]/|e|² with xᵀe = u|e| and |x|² = u² + Σ_{j=2}^{d} z_j² (d - 1 identical z terms)
    moment = sp.expand(u**2 * u**2).xreplace(fourth) + (d - 1) * sp.expand(u**2 * z**2).xreplace(fourth)
    second = moment / b + (1 - 1 / b) * var**2  # E[Ĉ²] (a multiple of the identity)
    return sp.simplify(1 - 2 * eta * var + eta**2 * second)


@lru_cache(maxsize=16)
def misspecification(activation):
    """(c, s²): the best linear coefficient c = E[σ(u)u] and the error s² = E σ(u)² - c² it leaves (u ~ N(0, 1))."""
    act = _activation(activation)
    c = gaussian_expectation(act, "identity", 1, 1, 1)
    return sp.simplify(c), sp.simplify(gaussian_expectation(act, act, 1, 1, 1) - c**2)


@lru_cache(maxsize=2)
def predictions(activation):
    """(Real World final test error, Ideal World test error at step t) as SymPy expressions in n, d, η, b, t.

    ``identity`` (n < d): the ridgeless risk r²(1 - n/d) at r² = 1 and r²ρ^t. ``sign`` (or any non-linear σ, n > d + 1):
    s²(1 + d/(n - d - 1)) and its η -> 0 limit s². The bootstrap error at T(n) is their difference.
    """
    c, s2 = misspecification(activation)
    if s2 == 0:
        real = ridgeless_formula(finite=True).xreplace({p: d, r2: c**2, sigma2: 0})
        return sp.piecewise_fold(real), c**2 * ideal_world_rate() ** t
    real = ridgeless_formula(finite=True).xreplace({p: d, r2: c**2, sigma2: s2}) + s2
    return sp.piecewise_fold(real), s2


class Worlds(NamedTuple):
    """Test and train curves (runs × steps+1) of both worlds, the Real World's least-squares floor per run and its
    training inputs (runs × n × d)."""

    real_test: np.ndarray
    real_train: np.ndarray
    ideal_test: np.ndarray
    floor: np.ndarray
    inputs: np.ndarray


def linear_worlds(activation, n, d, steps, batch, lr, runs, seed):
    """Simulate ``runs`` independent pairs of Real and Ideal Worlds of the linear toy (vectorized over runs).

    Each run draws β* uniformly on the sphere of radius √d, n training samples, and runs both SGDs for ``steps``
    steps; test errors are exact (:func:`test_error`), train losses are on the n samples.
    """
    n, d = _validate.count(n, "n", 1), _validate.count(d, "d", 1)
    steps, batch = _validate.count(steps, "steps"), _validate.count(batch, "batch", 1)
    runs, lr = _validate.count(runs, "runs", 1), _validate.variance(lr, "lr", positive=True)
    act = _activation(activation)
    sigma = act.numpy[0]
    err = lambdify((q11, q12, q22), test_error(act))
    rng = np.random.default_rng(seed)
    star = rng.standard_normal((runs, d))
    star *= np.sqrt(d) / np.linalg.norm(star, axis=1, keepdims=True)
    X = rng.standard_normal((runs, n, d)) / np.sqrt(d)
    Y = sigma(np.einsum("rnd,rd->rn", X, star))
    floor = np.array([np.mean((x @ np.linalg.lstsq(x, y, rcond=None)[0] - y) ** 2) for x, y in zip(X, Y)])
    real, ideal = np.zeros((runs, d)), np.zeros((runs, d))
    curves = np.empty((3, runs, steps + 1))
    rows = np.arange(runs)[:, None]

    def step_(beta, xb, yb):
        beta -= lr * np.einsum("rbd,rb->rd", xb, np.einsum("rbd,rd->rb", xb, beta) - yb) / batch

    for s in range(steps + 1):
        for k, beta in ((0, real), (2, ideal)):
            curves[k, :, s] = err(1.0, np.einsum("rd,rd->r", star, beta) / d, np.einsum("rd,rd->r", beta, beta) / d)
        curves[1, :, s] = np.mean((np.einsum("rnd,rd->rn", X, real) - Y) ** 2, axis=1)
        if s < steps:
            pick = rng.integers(0, n, (runs, batch))
            step_(real, X[rows, pick], Y[rows, pick])
            fresh = rng.standard_normal((runs, batch, d)) / np.sqrt(d)
            step_(ideal, fresh, sigma(np.einsum("rbd,rd->rb", fresh, star)))
    return Worlds(curves[0], curves[1], curves[2], floor, X)


def stopping_time(train, floor, tolerance=0.01):
    """T(n): the first step where the mean train curve is within ``tolerance`` of its floor, measured from its start.

    ``train`` is (runs × steps+1), ``floor`` the runs' least-squares minima; None if it never gets there.
    """
    mean, low = np.mean(train, axis=0), float(np.mean(floor))
    hits = np.nonzero(mean - low <= tolerance * (mean[0] - low))[0]
    return int(hits[0]) if hits.size else None


# --------------------------------------------------------------------------------------------------------------
# Kernel version
# --------------------------------------------------------------------------------------------------------------


def ideal_kernel_error(spectrum, lr, steps):
    """Σ_k N(d, k) μ_k (1 - ημ_k)^{2t}, t = 0..steps: population kernel GD on a target from the kernel's own GP.

    ``spectrum`` is a :class:`theory.scaling.KernelSpectrum`; degrees beyond its k_max are left out: their share of
    the error, κ(1) - Σ_{k <= k_max} N(d, k) μ_k, is to be added by the caller (it barely moves while ημ_k t << 1).
    """
    mu, count = spectrum.eigenvalue, spectrum.multiplicity
    term = lambdify((sp.Symbol("mu"), sp.Symbol("N"), eta, t),
                    sp.Symbol("N") * sp.Symbol("mu") * (1 - eta * sp.Symbol("mu")) ** (2 * t))
    times = np.arange(_validate.count(steps, "steps") + 1)
    return term(mu[None, :], count[None, :], _validate.variance(lr, "lr", positive=True), times[:, None]).sum(axis=1)


def kernel_worlds(gram, cross, diag, lr, steps):
    """Real World test error of kernel GD from f = 0 on n samples with a GP(0, Θ) target, exactly, for t = 0..steps.

    ``gram`` = Θ(X, X) (n × n), ``cross`` = Θ(X, X') to test points, ``diag`` = Θ(x', x'). With Θ(X, X) = U Λ Uᵀ,
    f_t = Θ(·, X) U g_t(Λ) Uᵀ y with g_t(λ) = (1 - (1 - ηλ/n)^t)/λ, and averaging over the GP target
    E(f_t(x') - f(x'))² = Θ(x', x') - Σ_j v_j² (2 g_t - λ_j g_t²), v = Uᵀ Θ(X, x'). Returns (steps+1,) test errors.
    """
    size = gram.shape[0]
    lam_, vec = np.linalg.eigh(gram)
    lam_ = np.maximum(lam_, 0.0)
    v2 = np.mean((vec.T @ cross) ** 2, axis=1)  # mean over test points of v_j²
    times = np.arange(_validate.count(steps, "steps") + 1)[:, None]
    decay = (1 - _validate.variance(lr, "lr", positive=True) * lam_ / size) ** times
    g = np.where(lam_ > 0, (1 - decay) / np.where(lam_ > 0, lam_, 1.0), lr * times / size)
    return float(np.mean(diag)) - np.sum(v2 * (2 * g - lam_ * g**2), axis=1)


# --------------------------------------------------------------------------------------------------------------
# theory derive
# --------------------------------------------------------------------------------------------------------------


@topic("deep_bootstrap", "the Deep Bootstrap toy: Real World final error and Ideal World error at step t",
       Option("activation", "identity", "the label function sigma: identity (well specified) or sign"))
def _derive_bootstrap(activation):
    real, ideal = predictions(activation)
    c, s2 = misspecification(activation)
    return [sp.Eq(sp.Symbol("c"), c), sp.Eq(sp.Symbol("s^2"), s2), sp.Eq(sp.Symbol("rho"), ideal_world_rate()),
            sp.Eq(sp.Symbol("L_real(T)"), real, evaluate=False), sp.Eq(sp.Symbol("L_ideal(t)"), ideal, evaluate=False)]
