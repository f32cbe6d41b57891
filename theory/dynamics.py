r"""Training dynamics of infinitely wide networks: kernel gradient descent in function space.

Convention (the one of :func:`theory.montecarlo.train`): D training points, loss
L = (1/2D) Σ_α |f(x_α) - y_α|² (the 1/D is ``loss_scale``; pass ``loss_scale=1`` for (1/2) Σ), learning rate η.
With a frozen NTK Θ (the infinite-width limit, Jacot et al. 2018) gradient flow and gradient descent are

    df_t(x)/dt = -(η/D) Θ(x, X) (f_t(X) - Y),          f_{t+1}(x) = f_t(x) - (η/D) Θ(x, X) (f_t(X) - Y).

Along an eigenvector of Θ = Θ(X, X) with eigenvalue λ the residual decays by the factor e^{-ηλt/D} (or
(1 - ηλ/D)^t), derived by :func:`mode_decay`; a test point receives the residual's integral, weighted by
g_t(λ) = (η/D) ∫_0^t e^{-ηλs/D} ds = (1 - e^{-ηλt/D})/λ (:func:`mode_gain`). Lifted to matrices
(:class:`MatrixFunction`, f(Θ) = V f(Λ) Vᵀ):

    f_t(X) = Y + e^{-ηΘt/D} (f_0(X) - Y),          f_t(x) = f_0(x) - A_t(x) (f_0(X) - Y),
    A_t(x) = Θ(x, X) Θ^{-1} (I - e^{-ηΘt/D}).

In parameter space the linearized network moves by θ' = -(η/D) ∇_θf_0(X)ᵀ (f_t(X) - Y), so (Lee et al. 2019, eq. 10)

    θ_t - θ_0 = -∇_θf_0(X)ᵀ Θ^{-1} (I - e^{-ηΘt/D}) (f_0(X) - Y) = -∇_θf_0(X)ᵀ V diag(g_t(λ)) Vᵀ (f_0(X) - Y),

the same gain per mode: only the D directions of the Jacobian's row space move (:meth:`MSEDynamics.parameter_change`,
with a finite network's own empirical NTK Θ = ∇_θf_0 ∇_θf_0ᵀ).

Over initializations f_0 is the NNGP, GP(0, K), so f_t is Gaussian (Lee et al. 2019, eqs. 15-16):

    μ_t(x) = A_t(x) Y,      Σ_t(x, x') = K(x, x') - A_t(x) K(X, x') - K(x, X) A_t(x')ᵀ + A_t(x) K A_t(x')ᵀ.

Numerics (:class:`MSEDynamics`): one eigendecomposition of Θ serves every time t at once; the per-mode factors are
the derived expressions, lambdified in a cancellation-free form (expm1/log1p). Modes with eigenvalue at most
D·ε·λ_max are numerically null: they are frozen and left out of Θ^{-1} (a pseudo-inverse). ``ridge`` r >= 0 replaces
Θ(X, X) by Θ(X, X) + rI: the regularization of an ill-conditioned kernel, whose t -> ∞ limit is kernel ridge
regression Θ(x, X)(Θ + rI)^{-1} Y.
"""

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.integrate
import scipy.special
import sympy as sp
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

from . import _validate
from . import symbols as sym
from .derive import Option, topic
from .numeric import lambdify

__all__ = ["lam", "D", "PSD_TOLERANCE", "mode_decay", "mode_gain", "max_learning_rate", "MatrixFunction",
           "equations", "MSEDynamics", "Gaussian", "nngp_posterior", "Flow", "cross_entropy_flow"]

#: An eigenvalue of the NTK on the training set (of a mode that trains: λ > 0).
lam = sp.Symbol("lambda", positive=True)
#: The number of training points (the loss is (1/2D) Σ_α |f(x_α) - y_α|²).
D = sp.Symbol("D", positive=True, integer=True)

#: A kernel is positive semi-definite when its smallest eigenvalue is >= -PSD_TOLERANCE x its largest |eigenvalue|.
PSD_TOLERANCE = 1e-9


# --------------------------------------------------------------------------------------------------------------
# Symbolic: the per-mode solution, derived, and its lift to matrices
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def mode_decay(discrete=False):
    """r_t/r_0 along an NTK eigenvector: dsolve of dr/dt = -(ηλ/D) r (e^{-ηλt/D}) or rsolve of
    r_{t+1} = r_t - (ηλ/D) r_t ((1 - ηλ/D)^t), in ``theory.symbols`` η, t and this module's λ, D."""
    r = sp.Function("r")
    if discrete:
        k = sp.Symbol("k", integer=True, nonnegative=True)
        solution = sp.rsolve(r(k + 1) - r(k) + sym.eta * lam / D * r(k), r(k), {r(0): 1})
        return sp.expand(solution.xreplace({k: sym.t}))
    ode = sp.Eq(r(sym.t).diff(sym.t), -sym.eta * lam / D * r(sym.t))
    return sp.dsolve(ode, r(sym.t), ics={r(0): 1}).rhs


@lru_cache(maxsize=2)
def mode_gain(discrete=False):
    """g_t(λ) = (η/D) ∫_0^t r_s/r_0 ds (a sum over s < t for gradient descent) = (1 - r_t/r_0)/λ: the weight of the
    mode in A_t(x) = Θ(x, X) V diag(g_t) Vᵀ (a test point integrates the training residual)."""
    s = sp.Symbol("s", integer=discrete, nonnegative=True)
    decay = mode_decay(discrete).xreplace({sym.t: s})
    if discrete:
        return sp.summation(sym.eta / D * decay, (s, 0, sym.t - 1))
    return sp.simplify(sp.integrate(sym.eta / D * decay, (s, 0, sym.t)))


@lru_cache(maxsize=1)
def max_learning_rate():
    """The largest stable learning rate of gradient descent, 2D/λ_max: the root of 1 - ηλ/D = -1, beyond which
    |1 - ηλ/D| > 1 and the mode of λ grows."""
    (root,) = sp.solve(sp.Eq(mode_decay(True).xreplace({sym.t: 1}), -1), sym.eta)
    return root


class MatrixFunction(sp.MatrixExpr):
    """f(Θ) for a symmetric matrix Θ and a scalar expression f(λ) (in :data:`lam`): V f(Λ) Vᵀ.

    ``MatrixFunction(mode_decay(), Θ)`` prints as e^{-ηΘt/D}; ``doit()`` evaluates it for an explicit matrix.
    """

    def __new__(cls, expr, matrix):
        return super().__new__(cls, sp.sympify(expr), matrix)

    @property
    def shape(self):
        return self.args[1].shape

    def doit(self, **hints):
        expr, matrix = self.args
        matrix = matrix.doit(**hints) if hints.get("deep", True) else matrix
        if isinstance(matrix, sp.MatrixBase):
            return sp.ImmutableMatrix(sp.Matrix(matrix).analytic_func(expr, lam))
        return MatrixFunction(expr, matrix)

    def _as_scalar(self, printer):
        # a placeholder symbol named by the matrix's own printing; "{...}" sorts it after η, t in products
        return self.args[0].xreplace({lam: sp.Symbol("{%s}" % printer._print(self.args[1]))})

    def _latex(self, printer):
        return printer._print(self._as_scalar(printer))

    def _sympystr(self, printer):
        return printer._print(self.args[0].xreplace({lam: sp.Symbol(str(self.args[1]))}))

    def _pretty(self, printer):
        return printer._print(self.args[0].xreplace({lam: sp.Symbol(str(self.args[1]))}))


_LATEX_NAMES = {"Theta": r"\Theta", "f0(X)": "f_0(X)", "Theta(x,X)": r"\Theta(x, X)", "K(x,X)": "K(x, X)",
                "K(x,x')": "K(x, x')", "f0(x)": "f_0(x)", "A_t(x)": "A_t(x)", "f_t(X)": "f_t(X)", "f_t(x)": "f_t(x)",
                "mu_t(x)": r"\mu_t(x)", "Sigma_t(x,x')": r"\Sigma_t(x, x')",
                "mu_NNGP(x)": r"\mu_{\mathrm{NNGP}}(x)", "Sigma_NNGP(x,x')": r"\Sigma_{\mathrm{NNGP}}(x, x')",
                "theta_t-theta_0": r"\theta_t - \theta_0", "J": r"\nabla_\theta f_0(X)"}


class _Named(sp.MatrixSymbol):
    """A matrix symbol with a plain name for text and a LaTeX name for typesetting."""

    def _latex(self, printer):
        return _LATEX_NAMES.get(self.name, self.name)


def _matrices():
    """The matrices of the solution: D training points, M test points, one output."""
    n, m, p = D, sp.Symbol("M", positive=True, integer=True), sp.Symbol("P", positive=True, integer=True)
    shapes = {"Theta": (n, n), "K": (n, n), "Y": (n, 1), "f0(X)": (n, 1), "Theta(x,X)": (m, n), "K(x,X)": (m, n),
              "K(x,x')": (m, m), "f0(x)": (m, 1), "A_t(x)": (m, n), "f_t(X)": (n, 1), "f_t(x)": (m, 1),
              "mu_t(x)": (m, 1), "Sigma_t(x,x')": (m, m), "mu_NNGP(x)": (m, 1), "Sigma_NNGP(x,x')": (m, m),
              "theta_t-theta_0": (p, 1), "J": (n, p)}
    return {name: _Named(name, *shape) for name, shape in shapes.items()}


def equations(discrete=False):
    """The NTK-GP solution as a list of ``sympy.Eq``: the per-mode equation and its derived solution, the training
    and test trajectories, their mean and covariance over initializations, the t -> ∞ limits, the stability bound,
    the NNGP posterior for comparison, and last the parameter-space solution (P parameters, Jacobian ∇_θf_0(X)
    of shape D × P; Lee et al. 2019, eq. 10). Matrix functions are :class:`MatrixFunction` lifts of the per-mode
    solution; Θ and K are symmetric (so (Θ^{-1})ᵀ = Θ^{-1})."""
    m = _matrices()
    theta, K, Y, K_xX, K_xx = m["Theta"], m["K"], m["Y"], m["K(x,X)"], m["K(x,x')"]
    I = sp.Identity(D)
    decay = MatrixFunction(mode_decay(discrete), theta)
    A = m["A_t(x)"]
    A_inf, A_inf_T = (sp.MatMul(m["Theta(x,X)"], sp.Inverse(theta)),
                                        sp.MatMul(sp.Inverse(theta), m["Theta(x,X)"].T))

    def sigma(a, a_T):
        return K_xx - sp.MatMul(a, K_xX.T) - sp.MatMul(K_xX, a_T) + sp.MatMul(a, K, a_T)

    r = sp.Function("r")
    change = r(sym.t + 1) - r(sym.t) if discrete else sp.Derivative(r(sym.t), sym.t)
    noisy_inverse = sp.Inverse(K + sp.Symbol("sigma^2", nonnegative=True) * I)
    return [
        sp.Eq(change, -sym.eta * lam / D * r(sym.t)),
        sp.Eq(r(sym.t), mode_decay(discrete) * r(0)),
        sp.Eq(m["f_t(X)"], Y + decay * (m["f0(X)"] - Y), evaluate=False),
        sp.Eq(A, sp.MatMul(m["Theta(x,X)"], sp.Inverse(theta), I - decay), evaluate=False),
        sp.Eq(m["f_t(x)"], m["f0(x)"] - A * (m["f0(X)"] - Y), evaluate=False),
        sp.Eq(m["mu_t(x)"], A * Y, evaluate=False),
        sp.Eq(m["Sigma_t(x,x')"], sigma(A, A.T), evaluate=False),
        sp.Eq(sp.Limit(m["mu_t(x)"], sym.t, sp.oo), A_inf * Y, evaluate=False),
        sp.Eq(sp.Limit(m["Sigma_t(x,x')"], sym.t, sp.oo), sigma(A_inf, A_inf_T), evaluate=False),
        sp.Eq(sp.Symbol("eta_max"), max_learning_rate().xreplace({lam: sp.Symbol("lambda_max", positive=True)})),
        sp.Eq(m["mu_NNGP(x)"], sp.MatMul(K_xX, noisy_inverse, Y), evaluate=False),
        sp.Eq(m["Sigma_NNGP(x,x')"], K_xx - sp.MatMul(K_xX, noisy_inverse, K_xX.T), evaluate=False),
        sp.Eq(m["theta_t-theta_0"], -sp.MatMul(m["J"].T, sp.Inverse(theta), I - decay, m["f0(X)"] - Y),
              evaluate=False),
    ]


@topic("ntk-dynamics", "the NTK-GP solution of kernel gradient flow on the MSE: trajectories, mean and covariance "
       "over initializations, limits, stability bound, NNGP posterior",
       Option("discrete", False, "gradient descent in steps t instead of gradient flow", None))
def _derive_ntk_dynamics(discrete):
    return equations(discrete)


# --------------------------------------------------------------------------------------------------------------
# Numeric: the derived per-mode factors, printed without cancellation
# --------------------------------------------------------------------------------------------------------------


def _stable(gain):
    """The gain (1 - r_t/r_0)/λ with 1 - e^{-ηλt/D} and 1 - (1 - ηλ/D)^t printed through expm1 and log1p: exact
    to rounding as ηλ/D -> 0, where the plain form loses every digit."""
    a = sp.Symbol("a", positive=True)
    in_a = sp.factor_terms(sp.powsimp(sp.expand(gain.xreplace({lam: a * D / sym.eta})), force=True))
    return optimize(in_a.rewrite(sp.exp), [expm1_opt, log1p_opt]).xreplace({a: sym.eta * lam / D})


@lru_cache(maxsize=2)
def _factors(discrete):
    """(decay, gain)(λ, η, t, D) as NumPy functions. For gradient descent the stable form holds for ηλ/D < 1;
    above it (1 - ηλ/D)^t oscillates and the plain form has no cancellation."""
    decay, gain = mode_decay(discrete), sp.simplify(mode_gain(discrete))
    gain = _stable(gain)
    if discrete:
        gain = sp.Piecewise((gain, sym.eta * lam / D < 1), ((1 - decay) / lam, True))
    args = (lam, sym.eta, sym.t, D)
    return lambdify(args, decay), lambdify(args, gain)


def _square(kernel, name, size=None):
    k = _validate.real_array(kernel, name, "a square kernel matrix")
    if k.ndim != 2 or k.shape[0] != k.shape[1] or (size is not None and k.shape[0] != size):
        want = f"({size}, {size})" if size is not None else "(D, D)"
        raise ValueError(f"{name}: expected a square kernel matrix of shape {want}, got shape {k.shape}")
    if k.shape[0] == 0:
        raise ValueError(f"{name}: expected a kernel of at least one training point (D >= 1), got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{name}: kernel entries must be finite (found NaN or inf)")
    scale = np.abs(k).max(initial=0.0)
    if np.abs(k - k.T).max(initial=0.0) > 1e-10 * scale:
        raise ValueError(f"{name}: the kernel matrix must be symmetric (to 1e-10 of its largest entry)")
    return (k + k.T) / 2


def _spectrum(kernel, name, ridge):
    """Eigenvalues (of kernel + ridge I) and eigenvectors of a symmetric PSD kernel, and the mask of trained modes."""
    w, V = np.linalg.eigh(kernel)
    scale = np.abs(w).max(initial=0.0)
    if w.size and w[0] < -PSD_TOLERANCE * scale:
        raise ValueError(f"{name}: not positive semi-definite: smallest eigenvalue {w[0]:.3g} < -{PSD_TOLERANCE:g} "
                         f"x largest |eigenvalue| {scale:.3g}")
    w = np.maximum(w, 0.0) + ridge
    live = w > len(w) * np.finfo(float).eps * max(scale + ridge, np.finfo(float).tiny)
    return w, V, live


def _times(t, discrete):
    t = _validate.real_array(t, "t", "a time >= 0 (or inf) or a 1-D array of them")
    if t.ndim > 1 or np.any(np.isnan(t)) or np.any(t < 0):
        raise ValueError(f"t: expected a time >= 0 (or inf) or a 1-D array of them, got {t!r}")
    if discrete and np.any(np.isfinite(t) & (t != np.round(t))):
        raise ValueError(f"t: gradient descent counts steps; expected integers >= 0 (or inf), got {t!r}")
    return t


def _targets(Y, size, name="Y"):
    Y = _validate.real_array(Y, name, "an array of targets")
    if Y.ndim not in (1, 2) or Y.shape[0] != size:
        raise ValueError(f"{name}: expected shape ({size},) or ({size}, out), got {Y.shape}")
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"{name}: must be finite (found NaN or inf)")
    return Y


def _cross(kernel, name, rows, columns):
    k = _validate.real_array(kernel, name, "a kernel matrix")
    if k.ndim != 2 or (rows is not None and k.shape[0] != rows) or k.shape[1] != columns:
        raise ValueError(f"{name}: expected shape ({rows if rows is not None else 'M'}, {columns}), got {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{name}: kernel entries must be finite (found NaN or inf)")
    return k


class Gaussian(NamedTuple):
    """The mean (..., M[, out]) and covariance (..., M, M) of a Gaussian process prediction."""

    mean: np.ndarray
    covariance: np.ndarray


class MSEDynamics:
    r"""Kernel gradient flow (or descent, ``discrete=True``) on L = (loss_scale/2) Σ_α |f(x_α) - y_α|², frozen NTK.

    ``ntk`` is Θ(X, X) (D×D, symmetric PSD), ``Y`` the targets, (D,) or (D, out); ``nngp`` the NNGP K(X, X) for
    covariances; ``loss_scale`` defaults to 1/D (:func:`theory.montecarlo.train`'s loss). Every method takes times
    ``t`` (a number or a 1-D array; steps for gradient descent; inf allowed) and returns a leading time axis for an
    array. All times come from one eigendecomposition Θ + rI = V Λ Vᵀ (``ridge`` r); modes with
    λ <= D·ε·λ_max are frozen and excluded from Θ^{-1} (pseudo-inverse). Raises ValueError for a kernel with an
    eigenvalue below -:data:`PSD_TOLERANCE` x λ_max.
    """

    def __init__(self, ntk, Y, lr=1.0, nngp=None, ridge=0.0, discrete=False, loss_scale=None):
        self.ntk = _square(ntk, "ntk")
        size = self.ntk.shape[0]
        self.Y = _targets(Y, size)
        self.lr = _validate.variance(lr, "lr", positive=True)
        self.ridge = _validate.variance(ridge, "ridge")
        self.discrete = bool(discrete)
        self.loss_scale = 1.0 / size if loss_scale is None else _validate.variance(loss_scale, "loss_scale", True)
        self.nngp = None if nngp is None else _square(nngp, "nngp", size)
        if self.nngp is not None:
            _spectrum(self.nngp, "nngp", 0.0)
        self.eigenvalues, self.eigenvectors, self._live = _spectrum(self.ntk, "ntk", self.ridge)
        self._decay, self._gain = _factors(self.discrete)

    @property
    def max_lr(self):
        """2D/λ_max (:func:`max_learning_rate`): gradient descent converges for lr below it (inf for Θ = 0)."""
        top = self.eigenvalues.max(initial=0.0)
        if top == 0:
            return np.inf
        return float(lambdify((lam, D), max_learning_rate())(top, 1.0 / self.loss_scale))

    def _factor(self, which, t):
        with np.errstate(all="ignore"):
            values = which(self.eigenvalues[None, :], self.lr, t[:, None], 1.0 / self.loss_scale)
        return values

    def decay(self, t):
        """The residual factor of each mode, (T, D): e^{-ηλ_i t/D} or (1 - ηλ_i/D)^t (1 for a null mode)."""
        t = _times(t, self.discrete)
        out = np.where(self._live, self._factor(self._decay, np.atleast_1d(t)), 1.0)
        return out if t.ndim else out[0]

    def modes(self, t, f0=None):
        """The training residual f_t(X) - Y in the eigenbasis, (T, D[, out]): decay_i(t) · v_iᵀ (f_0(X) - Y)."""
        r0 = self.eigenvectors.T @ (self._initial(f0, self.Y.shape[0], "f0") - self.Y)
        decay = self.decay(t)
        return decay[..., None] * r0 if r0.ndim == 2 else decay * r0

    def weights(self, t, ntk_test=None):
        """A_t(x) = Θ(x, X) (Θ + rI)^{-1} (I - decay(Θ + rI)), (T, M, D); ``ntk_test`` = Θ(x, X) (None: x = X)."""
        t = _times(t, self.discrete)
        gain = np.where(self._live, self._factor(self._gain, np.atleast_1d(t)), 0.0)
        V = self.eigenvectors
        if ntk_test is None:  # Θ(X, X) V = V Λ without the ridge, exactly
            left = V * (self.eigenvalues - self.ridge)
        else:
            left = _cross(ntk_test, "ntk_test", None, len(V)) @ V
        out = (left[None] * gain[:, None, :]) @ V.T
        return out if t.ndim else out[0]

    def parameter_coefficients(self, t, f0):
        """c_t = -Θ^{-1}(I - decay(Θ))(f_0(X) - Y), (T, D[, out]): θ_t - θ_0 = ∇_θf_0(X)ᵀ c_t for the linearized
        network (a combination of the D gradients ∇_θf_0(x_α); e.g. ``MLP.grads(params, X, c_t)`` assembles it).
        Per mode the weight is the gain g_t(λ) of :func:`mode_gain`; null modes do not move."""
        t = _times(t, self.discrete)
        gain = np.where(self._live, self._factor(self._gain, np.atleast_1d(t)), 0.0)
        r0 = self.eigenvectors.T @ (self._initial(f0, self.Y.shape[0], "f0") - self.Y)
        moved = gain[..., None] * r0 if r0.ndim == 2 else gain * r0
        out = -np.einsum("ij,tj...->ti...", self.eigenvectors, moved)
        return out if t.ndim else out[0]

    def parameter_change(self, t, jacobian, f0):
        """θ_t - θ_0 = -∇_θf_0(X)ᵀ Θ^{-1}(I - e^{-ηΘt/D})(f_0(X) - Y) (or (I - ηΘ/D)^t for gradient descent),
        (T, P): the parameter-space solution of Lee et al. 2019 (eq. 10), exact for a model linear in θ.

        ``jacobian`` is ∇_θf_0(X), (D, P) (or (D, out, P) for several outputs), whose Gram matrix should be this
        ``ntk``: Θ = ∇_θf_0 ∇_θf_0ᵀ, a finite network's own empirical NTK. ``f0`` = f_0(X).
        """
        size = self.Y.shape[0]
        J = np.asarray(jacobian, dtype=np.float64)
        if J.shape[:-1] != (size,) + self.Y.shape[1:] or J.ndim < 2 or not np.all(np.isfinite(J)):
            raise ValueError(f"jacobian: expected finite ∇_θf_0(X) of shape {(size,) + self.Y.shape[1:]} + (P,), "
                             f"got {J.shape}")
        c = self.parameter_coefficients(t, f0)
        return np.tensordot(c, J, axes=J.ndim - 1)

    def _initial(self, f, size, name):
        if f is None:
            return np.zeros((size,) + self.Y.shape[1:])
        f = np.asarray(f, dtype=np.float64)
        if f.shape != (size,) + self.Y.shape[1:]:
            raise ValueError(f"{name}: expected shape {(size,) + self.Y.shape[1:]}, got {f.shape}")
        return f

    def predict(self, t, f0=None, ntk_test=None, f0_test=None):
        """f_t(x) = f_0(x) - A_t(x)(f_0(X) - Y) of one initialization (the linearized network), (T, M[, out]).

        ``f0`` = f_0(X) and ``f0_test`` = f_0(x) default to 0, which gives the mean μ_t(x) = A_t(x) Y; x = X when
        ``ntk_test`` is None.
        """
        if ntk_test is None and f0_test is not None:
            raise ValueError("f0_test: test outputs need test points; pass ntk_test = Θ(x, X) too")
        A = self.weights(t, ntk_test)
        M = A.shape[-2]
        residual = self.Y - self._initial(f0, self.Y.shape[0], "f0")
        start = self._initial(f0_test, M, "f0_test") if ntk_test is not None else self._initial(f0, M, "f0")
        return start + A @ residual

    def covariance(self, t, ntk_test=None, nngp_test=None, nngp_test_test=None):
        """Σ_t(x, x') = K(x, x') - A_t K(X, x') - K(x, X) A_tᵀ + A_t K A_tᵀ over initializations, (T, M, M).

        Needs ``nngp`` = K(X, X); for test points also ``nngp_test`` = K(x, X) and ``nngp_test_test`` = K(x, x').
        """
        if self.nngp is None:
            raise ValueError("nngp: the covariance needs the NNGP K(X, X); pass nngp= to MSEDynamics")
        A = self.weights(t, ntk_test)
        if ntk_test is None:
            cross, prior = self.nngp, self.nngp
        else:
            if nngp_test is None or nngp_test_test is None:
                raise ValueError("nngp_test, nngp_test_test: test covariances need K(x, X) and K(x, x')")
            M = A.shape[-2]
            cross = _cross(nngp_test, "nngp_test", M, len(self.nngp))
            prior = _square(nngp_test_test, "nngp_test_test", M)
        AK = A @ cross.T
        return prior - AK - np.swapaxes(AK, -1, -2) + A @ self.nngp @ np.swapaxes(A, -1, -2)

    def gaussian(self, t, ntk_test=None, nngp_test=None, nngp_test_test=None):
        """:class:`Gaussian` (μ_t, Σ_t) of f_t over initializations (Lee et al. 2019, eqs. 15-16)."""
        return Gaussian(self.predict(t, ntk_test=ntk_test),
                        self.covariance(t, ntk_test, nngp_test, nngp_test_test))


def nngp_posterior(nngp, Y, nngp_test, nngp_test_test, noise=0.0):
    """The NNGP posterior (exact Bayesian inference, Lee et al. 2018) as a :class:`Gaussian`:
    μ(x) = K(x, X)(K + σ²I)^{-1} Y, Σ(x, x') = K(x, x') - K(x, X)(K + σ²I)^{-1} K(X, x'), σ² = ``noise``.

    (K + σ²I)^{-1} comes from one eigendecomposition, its spectral factor 1/λ being the t -> ∞ limit of
    :func:`mode_gain`; numerically null modes are left out (a pseudo-inverse).
    """
    K = _square(nngp, "nngp")
    Y = _targets(Y, len(K))
    w, V, live = _spectrum(K, "nngp", _validate.variance(noise, "noise"))
    inverse = lambdify((lam, sym.eta, D), sp.limit(mode_gain(), sym.t, sp.oo))
    factor = np.where(live, inverse(np.where(live, w, 1.0), 1.0, 1.0), 0.0)
    cross = _cross(nngp_test, "nngp_test", None, len(K)) @ V
    prior = _square(nngp_test_test, "nngp_test_test", cross.shape[0])
    return Gaussian((cross * factor) @ (V.T @ Y), prior - (cross * factor) @ cross.T)


# --------------------------------------------------------------------------------------------------------------
# Cross-entropy: the same function-space flow, integrated numerically
# --------------------------------------------------------------------------------------------------------------


class Flow(NamedTuple):
    """Logits along a gradient flow: ``train`` (T, D, C) and ``test`` (T, M, C) (None without test points)."""

    train: np.ndarray
    test: np.ndarray | None


def _probabilities(logits):
    """∂ℓ/∂f + y for the cross-entropy ℓ = -Σ_c y_c log p_c: softmax(f) for C >= 2 classes, sigmoid(f) for the
    binary loss of one logit (ℓ = log(1 + e^f) - y f)."""
    if logits.shape[-1] == 1:
        return scipy.special.expit(logits)
    return scipy.special.softmax(logits, axis=-1)


def _logits(f, shape, name):
    if f is None:
        return np.zeros(shape)
    f = np.asarray(f, dtype=np.float64)
    if f.shape != shape or not np.all(np.isfinite(f)):
        raise ValueError(f"{name}: expected finite logits of shape {shape}, got shape {f.shape}")
    return f


def cross_entropy_flow(ntk, Y, t, lr=1.0, f0=None, ntk_test=None, f0_test=None, loss_scale=None, rtol=1e-10,
                       atol=1e-12, discrete=False):
    """Gradient flow of the cross-entropy L = loss_scale Σ_α ℓ(f(x_α), y_α) with a frozen NTK, by ``solve_ivp``.

    df_t(x)/dt = -η·loss_scale Θ(x, X)(p(f_t(X)) - Y), p = softmax (``Y`` of shape (D, C), rows of probabilities)
    or sigmoid (``Y`` of shape (D, 1), labels in [0, 1]). The state is I(t) = ∫_0^t (p - Y) ds, of which train and
    test logits are affine: f_t(x) = f_0(x) - η·loss_scale Θ(x, X) I(t). ``t``: a 1-D array of times >= 0.
    Returns :class:`Flow`; loss_scale defaults to 1/D.

    With ``discrete=True``, gradient descent at rate η instead (the linearized network of Lee et al. 2019, Sec. 2.3,
    trained step by step): ``t`` counts steps and I(t) = Σ_{k<t} (p(f_k(X)) - Y), exactly (no integration error).
    """
    theta = _square(ntk, "ntk")
    _spectrum(theta, "ntk", 0.0)
    size = len(theta)
    Y = _targets(Y, size)
    if Y.ndim != 2 or np.any(Y < 0) or (Y.shape[1] == 1 and np.any(Y > 1)) or (
            Y.shape[1] > 1 and not np.allclose(Y.sum(axis=1), 1.0, atol=1e-12)):
        raise ValueError("Y: expected (D, C) class probabilities (rows summing to 1) or (D, 1) labels in [0, 1]")
    times = _times(t, discrete)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError(f"t: expected a 1-D array of finite {'steps' if discrete else 'times'} >= 0, got {t!r}")
    rate = _validate.variance(lr, "lr", positive=True) * (
        1.0 / size if loss_scale is None else _validate.variance(loss_scale, "loss_scale", True))
    start = _logits(f0, Y.shape, "f0")

    def rhs(_, state):
        logits = start - rate * theta @ state.reshape(Y.shape)
        return (_probabilities(logits) - Y).ravel()

    integral = np.zeros((len(times),) + Y.shape)
    if discrete:
        state, steps = np.zeros(Y.size), times.astype(int)
        for k in range(steps.max(initial=0)):
            state = state + rhs(k, state)
            integral[steps == k + 1] = state.reshape(Y.shape)
    elif times.max(initial=0.0) > 0:
        order = np.argsort(times)
        solution = scipy.integrate.solve_ivp(rhs, (0.0, float(times.max())), np.zeros(Y.size), method="DOP853",
                                             t_eval=times[order], rtol=rtol, atol=atol)
        if not solution.success:
            raise RuntimeError(f"cross_entropy_flow: solve_ivp failed: {solution.message}")
        integral[order] = solution.y.T.reshape((len(times),) + Y.shape)
    train = start - rate * np.einsum("ab,tbc->tac", theta, integral)
    test = None
    if ntk_test is not None:
        cross = _cross(ntk_test, "ntk_test", None, size)
        begin = _logits(f0_test, (len(cross), Y.shape[1]), "f0_test")
        test = begin - rate * np.einsum("mb,tbc->tmc", cross, integral)
    return Flow(train, test)
