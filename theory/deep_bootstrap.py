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
  σ² = s², up to O(1/n²) because the residual depends on u), the Ideal World to s² (as η -> 0). The bootstrap error
  s² d/(n - d - 1) is a small fraction d/(n - 1) of the test error.

Exact finite-n, finite-η versions (the claims test these): :func:`least_squares_risk` (the Real World's limit, mean
over the data, derived for σ = sign), :func:`least_squares_fit` (its in-sample excess, a control variate) and
:func:`ideal_world_error` (the Ideal World's mean error at step t, from a closed linear recursion). The Real World's
error at step t averaged over its minibatches given its data is computed exactly by :func:`linear_worlds`
(``real_mean``), so its unconverged part at T(n) is known per run.

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
from .activations import Activation as _Activation
from .activations import activation as _activation
from .derive import Option, topic
from .double_descent import p, r2, ridgeless_formula, sigma2
from .gaussian import gaussian_expectation
from .numeric import lambdify
from .scaling import d
from .symbols import eta, n, q11, q12, q22, t, z

__all__ = ["b", "d", "test_error", "ideal_world_rate", "misspecification", "predictions", "least_squares_risk",
           "least_squares_fit", "ideal_world_error", "Worlds", "linear_worlds", "stopping_time", "ideal_kernel_error", "kernel_worlds",
           "kernel_population_worlds", "tau", "bootstrap_coefficient"]

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


def _chi_moment(power):
    """E r^p for r = |a|, a ~ N(0, I_n) (r² is χ² with n degrees of freedom): 2^{p/2} Γ((n + p)/2) / Γ(n/2)."""
    return sp.gammasimp(2 ** sp.Rational(power, 2) * sp.gamma((n + power) / 2) / sp.gamma(n / 2))


@lru_cache(maxsize=4)
def least_squares_risk(activation):
    r"""The exact mean test error of least squares on n > d + 1 samples, E over the data, for σ = sign (or any σ with
    σ(ru) = σ(u) for r > 0); for σ(x) = x the noiseless ridgeless risk (:func:`predictions`).

    Derivation (whitened inputs w = √d x ~ N(0, I_d), β* along e₁, so u = w₁; θ = β/√d; the best linear predictor is
    c e₁ and the test error of θ is s² + |θ - c e₁|²). The design is W = [a, Z] with a = (u_i) and Z (n × (d - 1))
    independent of a; the residual ε = σ(a) - c a. Least squares gives θ̂ - c e₁ = δ = argmin |ε - W δ|². By
    Frisch-Waugh, δ_Z = (Z̃ᵀZ̃)⁻¹Z̃ᵀε_⊥ with Z̃ and ε_⊥ the parts orthogonal to a, and δ₁ = (aᵀε - aᵀZ δ_Z)/|a|²,
    where aᵀZ/|a| = g ~ N(0, I_{d-1}) is independent of Z̃. Z̃ is Gaussian in the m = n - 1 dimensional complement of
    a, with k = d - 1 columns, so E[Z̃(Z̃ᵀZ̃)⁻²Z̃ᵀ] = k/(m(m - k - 1)) I (inverse Wishart), and

        E|δ|² = E[(aᵀε)²/|a|⁴] + k/(m(m - k - 1)) · E[|ε_⊥|² (1 + 1/|a|²)].

    With a = rθ (r = |a| independent of θ uniform on the sphere) and σ(rθ) = σ(θ): aᵀε/|a|² = θᵀσ(θ)/r - c and
    |ε_⊥|² = |σ(θ)|² - (θᵀσ(θ))², whose moments follow from E r^p (:func:`_chi_moment`) and the Gaussian ones
    E[a₁σ(a₁)] = c, E[a₁²σ(a₁)²], E σ(a₁)² (:func:`theory.gaussian_expectation`). For large n,
    E|δ|² = s² d/(n - d - 1) + O(1/n²): the least-squares formula of :func:`predictions` is right to O(1/n).
    """
    return _least_squares(activation)[0]


@lru_cache(maxsize=4)
def least_squares_fit(activation):
    r"""The exact mean in-sample excess of least squares over the best linear predictor, E|X(β̂ - cβ*)|²/n, for the
    σ of :func:`least_squares_risk` (n > d + 1): s² - E|res|²/n with the residual of ε on [a, Z],
    E|res|² = (m - k)/m · E|ε_⊥|² (a fixed vector's share outside a uniformly random k-dimensional subspace of the
    m-dimensional complement of a); s² d/n for σ = sign. A control variate for the Real World's limit: its excess
    |δ|² is close to |Wδ|²/n."""
    return _least_squares(activation)[1]


@lru_cache(maxsize=4)
def _least_squares(activation):
    act = _activation(activation)
    c, s2 = misspecification(act)
    if s2 == 0:
        return predictions(act)[0], sp.S.Zero
    if sp.simplify(act.expr.subs(z, 2 * z) - act.expr) != 0:
        raise ValueError(f"activation: the exact least-squares risk needs sigma(r u) = sigma(u) for r > 0 (e.g. "
                         f"sign), got {act.name}")
    second = gaussian_expectation(act, act, 1, 1, 1)  # E σ(u)²
    weighted = gaussian_expectation(_Activation(z**2 * act.expr), act, 1, 1, 1)  # E u²σ(u)²
    inner2 = (n * weighted + n * (n - 1) * c**2) / _chi_moment(2)  # E (θᵀσ(θ))²
    half = sp.Dummy("y", positive=True)  # n = 2y + 1: Γ((n - 1)/2)/Γ((n + 1)/2) = Γ(y)/Γ(y + 1) = 1/y
    ratio = sp.gammasimp((_chi_moment(-1) / _chi_moment(1)).subs(n, 2 * half + 1)).subs(half, (n - 1) / 2)
    # E[(aᵀε)²/|a|⁴] = E(θᵀσ)² E r⁻² - 2c E[θᵀσ] E r⁻¹ + c², with E θᵀσ(θ) = n E[a₁σ(a₁)] / E r = nc / E r
    along = inner2 * _chi_moment(-2) - 2 * c * n * c * ratio + c**2
    m, k = n - 1, d - 1
    across = k / (m * (m - k - 1)) * (n * second - inner2) * (1 + _chi_moment(-2))
    residual = (m - k) / m * (n * second - inner2)
    return sp.factor(sp.cancel(along + across)) + s2, sp.factor(sp.cancel(s2 - residual / n))


@lru_cache(maxsize=4)
def ideal_world_error(activation):
    r"""The Ideal World's exact mean test error at step t: online SGD from β = 0 with b fresh samples per step.

    In whitened coordinates (as in :func:`least_squares_risk`) with e = θ - c e₁, h = η/d and the residual
    ε = σ(u) - cu (E[uε] = 0), one step e' = e - (h/b) Σ w_i(w_iᵀe - ε_i) gives, by Isserlis' theorem and the
    independence of u = w₁ from the other coordinates,

        E e₁' = (1 - h) E e₁,    E|e'|² = ρ E|e|² - (2h²/b) E[u³ε] E e₁ + (h²/b)(E[u²ε²] + (d - 1) s²),

    with ρ = :func:`ideal_world_rate`. From e₀ = -c e₁ this linear recursion sums to
    E|e_t|² = c²ρ^t + (h²/b)(E[u²ε²] + (d - 1)s²)(1 - ρ^t)/(1 - ρ) + (2h²c/b) E[u³ε] (ρ^t - (1 - h)^t)/(ρ - (1 - h)),
    and the test error is s² + E|e_t|² (for σ(x) = x: ρ^t). As η -> 0 at fixed ηt it tends to s² + c²e^{-2ηt/d}.
    """
    act = _activation(activation)
    c, s2 = misspecification(act)
    h, rho = eta / d, ideal_world_rate()
    third = gaussian_expectation(_Activation(z**3), act, 1, 1, 1) - 3 * c  # E[u³ε]
    fourth = gaussian_expectation(_Activation(z**2 * act.expr), act, 1, 1, 1) - 2 * c * (third + 3 * c) + 3 * c**2
    noise = h**2 * (fourth + (d - 1) * s2) / b
    drift = 2 * h**2 * c * third / b
    floor, transient = (sp.factor(sp.cancel(e)) for e in (noise / (1 - rho), drift / (rho - (1 - h))))
    error = c**2 * rho**t + floor * (1 - rho**t) + transient * (rho**t - (1 - h) ** t)
    return sp.simplify(s2) + error


class Worlds(NamedTuple):
    """Test and train curves (runs × steps+1) of both worlds, the Real World's least-squares floor per run and its
    training inputs (runs × n × d); ``real_mean`` (runs × steps+1) is the Real World's test error averaged exactly
    over its minibatch draws given its data, and ``limit`` (runs,) the test error of the point it converges to, the
    min-norm least-squares solution, and ``fit`` (runs,) that solution's in-sample excess over the best linear predictor,
    |X(β_∞ - cβ*)|²/n (see :func:`linear_worlds` and :func:`least_squares_fit`)."""

    real_test: np.ndarray
    real_train: np.ndarray
    ideal_test: np.ndarray
    floor: np.ndarray
    inputs: np.ndarray
    real_mean: np.ndarray
    limit: np.ndarray
    fit: np.ndarray


def linear_worlds(activation, n, d, steps, batch, lr, runs, seed):
    """Simulate ``runs`` independent pairs of Real and Ideal Worlds of the linear toy (vectorized over runs).

    Each run draws β* uniformly on the sphere of radius √d, n training samples, and runs both SGDs for ``steps``
    steps; test errors are exact (:func:`test_error`), train losses are on the n samples.

    ``real_mean`` averages the Real World's test error exactly over its minibatches (b indices drawn uniformly with
    replacement), given the run's data: the iterate stays in the row space of X (basis Q), β_t = β_∞ + Q z_t with β_∞
    the min-norm least-squares solution, p_j = Qᵀx_j, r_j = y_j - x_jᵀβ_∞, S = Σ p_j p_jᵀ/n, v = Σ p_j r_j/n (0 up to
    rounding), and the minibatch gradient Ḡ = (1/b) Σ_B p_j(p_jᵀz - r_j) has E[Ḡ|z] = Sz - v and
    E[ḠḠᵀ|z] = (1/b) E_j[p_j p_jᵀ (p_jᵀz - r_j)²] + (1 - 1/b)(Sz - v)(Sz - v)ᵀ, so the mean μ and second moment M of
    z follow a closed linear recursion from z₀ = -Qᵀβ_∞. The test error is affine in q12 = β*ᵀβ/d and q22 = |β|²/d,
    so its mean is the test error at their means.
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
    solution = np.array([np.linalg.lstsq(x, y, rcond=None)[0] for x, y in zip(X, Y)])  # min-norm least squares
    floor = np.mean((np.einsum("rnd,rd->rn", X, solution) - Y) ** 2, axis=1)
    limit = err(1.0, np.einsum("rd,rd->r", star, solution) / d, np.einsum("rd,rd->r", solution, solution) / d)
    real_mean = _real_world_mean(X, Y, star, solution, steps, batch, lr, err)
    c = float(misspecification(act)[0])
    fit = np.mean(np.einsum("rnd,rd->rn", X, solution - c * star) ** 2, axis=1)
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
    return Worlds(curves[0], curves[1], curves[2], floor, X, real_mean, limit, fit)


def _real_world_mean(X, Y, star, solution, steps, batch, lr, err):
    """The Real World's test error averaged exactly over its minibatch draws, per run and step (see
    :func:`linear_worlds`): the recursion of the mean μ and second moment M of its coordinates in the data span."""
    n, d = X.shape[1:]
    Q = np.linalg.qr(np.transpose(X, (0, 2, 1)))[0]  # (runs, d, k): an orthonormal basis of the row space of X
    P = X @ Q  # p_j = Qᵀ x_j
    PT = np.transpose(P, (0, 2, 1))
    r = Y - np.einsum("rnd,rd->rn", X, solution)
    S = PT @ P / n
    v = np.einsum("rnk,rn->rk", P, r) / n
    mu = -np.einsum("rdk,rd->rk", Q, solution)
    M = mu[:, :, None] * mu[:, None, :]
    base12, base22 = np.einsum("rd,rd->r", star, solution) / d, np.einsum("rd,rd->r", solution, solution) / d
    star_k, sol_k = np.einsum("rdk,rd->rk", Q, star), np.einsum("rdk,rd->rk", Q, solution)
    out = np.empty((X.shape[0], steps + 1))
    for s in range(steps + 1):
        q12 = base12 + np.einsum("rk,rk->r", star_k, mu) / d
        q22 = base22 + (2 * np.einsum("rk,rk->r", sol_k, mu) + np.trace(M, axis1=1, axis2=2)) / d
        out[:, s] = err(1.0, q12, np.maximum(q22, 0.0))  # q22 >= 0 (rounding at t = 0, where it is 0)
        if s == steps:
            break
        Smu, MS = (S @ mu[:, :, None])[:, :, 0], M @ S
        weight = np.sum((P @ M) * P, axis=2) - 2 * r * (P @ mu[:, :, None])[:, :, 0] + r**2
        single = PT @ (weight[:, :, None] * P) / n  # E_j[G_j G_jᵀ]
        outer = lambda a, b_: a[:, :, None] * b_[:, None, :]  # noqa: E731
        mean_sq = S @ MS - outer(Smu, v) - outer(v, Smu) + outer(v, v)  # E[(Sz - v)(Sz - v)ᵀ]
        cross = MS - outer(mu, v)  # E[z Ḡᵀ]
        M = M - lr * (cross + np.transpose(cross, (0, 2, 1))) + lr**2 * (single / batch + (1 - 1 / batch) * mean_sq)
        mu = mu - lr * (Smu - v)
    return out


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
    cross = np.asarray(cross, dtype=np.float64)
    return kernel_population_worlds(gram, cross @ cross.T / cross.shape[1], float(np.mean(diag)), lr, steps)


def kernel_population_worlds(gram, second, prior, lr, steps):
    """:func:`kernel_worlds` averaged over test points x' drawn from a distribution, exactly: ``second`` =
    E_x'[Θ(X, x')Θ(x', X)] (n × n) and ``prior`` = E_x' Θ(x', x'), so E_x' v_j² = u_jᵀ (second) u_j.

    On the sphere with a zonal kernel Θ = Σ_k μ_k N(d, k) P_k, ``second`` is the zonal kernel Σ_k μ_k² N(d, k) P_k
    at the training angles (Funk-Hecke). Returns the (steps+1,) test errors.
    """
    size = gram.shape[0]
    lam_, vec = np.linalg.eigh(gram)
    lam_ = np.maximum(lam_, 0.0)
    v2 = np.sum(vec * (np.asarray(second, dtype=np.float64) @ vec), axis=0)  # u_jᵀ (second) u_j
    times = np.arange(_validate.count(steps, "steps") + 1)[:, None]
    decay = (1 - _validate.variance(lr, "lr", positive=True) * lam_ / size) ** times
    g = np.where(lam_ > 0, (1 - decay) / np.where(lam_ > 0, lam_, 1.0), lr * times / size)
    return float(prior) - np.sum(v2 * (2 * g - lam_ * g**2), axis=1)


#: τ_a = tr K^a = Σ_k N(d, k) μ_k^a, the traces of the powers of the kernel's integral operator (τ₁ = Θ(x, x)).
tau = sp.IndexedBase("tau")


@lru_cache(maxsize=32)
def bootstrap_coefficient(steps):
    r"""c₁(t) = lim n (Real(n, t) - Ideal(t)): the 1/n coefficient of the kernel bootstrap error after t steps, for a
    zonal kernel on the sphere (constant diagonal), as a SymPy expression in η and τ_a = tr K^a.

    Derivation: the residual after t steps is (1 - ηK̂)^t applied to -f, K̂g = (1/n) Σ_i Θ(·, x_i) g(x_i), so the test
    error is Σ_{s,s'} C(t,s) C(t,s') (-η)^{s+s'} E tr(K̂^s K K̂^{s'ᵀ}): the expectation of a cycle of S + 1 kernels
    (S = s + s') through the test point and S training indices. All indices distinct ((n)_S/n^S = 1 - C(S,2)/n + ...
    of the tuples) give τ_{S+1}, the Ideal World's term; one coincident pair at cycle distance a (S - a pairs) splits
    the cycle into two joined at one point, whose expectation is τ_a τ_{S+1-a} because the diagonal of K^a is the
    constant τ_a. So c₁(t) = Σ C(t,s) C(t,s') (-η)^S [Σ_{a=1}^{S-1} (S - a) τ_a τ_{S+1-a} - C(S, 2) τ_{S+1}];
    after one step the bootstrap error is exactly η²(τ₁τ₂ - τ₃)/n at every n (nothing beyond 1/n).
    """
    t_ = _validate.count(steps, "steps", 1)
    total = sp.S.Zero
    for s in range(t_ + 1):
        for s2 in range(t_ + 1):
            S = s + s2
            pairs = sum((S - a) * tau[a] * tau[S + 1 - a] for a in range(1, S)) - sp.binomial(S, 2) * tau[S + 1]
            total += sp.binomial(t_, s) * sp.binomial(t_, s2) * (-eta) ** S * pairs
    return sp.expand(total)


# --------------------------------------------------------------------------------------------------------------
# theory derive
# --------------------------------------------------------------------------------------------------------------


@topic("deep_bootstrap", "the Deep Bootstrap toy: Real World final error and Ideal World error at step t",
       Option("activation", "identity", "the label function sigma: identity (well specified) or sign"))
def _derive_bootstrap(activation):
    real, ideal = predictions(activation)
    c, s2 = misspecification(activation)
    return [sp.Eq(sp.Symbol("c"), c), sp.Eq(sp.Symbol("s^2"), s2), sp.Eq(sp.Symbol("rho"), ideal_world_rate()),
            sp.Eq(sp.Symbol("L_real(T)"), real, evaluate=False), sp.Eq(sp.Symbol("L_ideal(t)"), ideal, evaluate=False),
            sp.Eq(sp.Symbol("E L_real (exact, finite n)"), least_squares_risk(activation), evaluate=False),
            sp.Eq(sp.Symbol("E L_ideal(t) (exact, finite eta)"), ideal_world_error(activation), evaluate=False)]
