r"""Neural scaling laws in solvable models (Bahri, Dyer, Kaplan, Lee & Sharma 2021, "Explaining neural scaling laws").

**Student-teacher random features.** Teacher F(x) = Σ_{M ≤ S} ω_M F_M(x) with ω ~ N(0, I/S); student
f(x) = Σ_{μ ≤ P} θ_μ f_μ(x), f_μ = Σ_M 𝒫_{μM} F_M with 𝒫_{μM} ~ N(0, 1), fitted by min-norm least squares on D
samples. Here the teacher features of a random input are Gaussian, F(x) ~ N(0, C) with C = diag(λ_i) (the
linear-Gaussian model; any feature map with that covariance has the same second-order theory), so the test loss
L = E_{x, ω}[(F(x)·ω - f(x)·θ̂)²] is exact given 𝒫 and the data (:func:`student_teacher_loss`).
Regimes: variance-limited (L - L_∞ ∝ D⁻¹ at fixed P ≪ D, ∝ P⁻¹ at fixed D ≪ P) and resolution-limited: for
λ_i ∝ i^{-(1+α)}, L(D) ∝ D^{-α} (P -> ∞) and L(P) ∝ P^{-α} (D -> ∞). The two limits are the same function
(1/S) tr[C - C Zᵀ(Z C Zᵀ)⁻¹ Z C] of an iid Gaussian matrix Z (the data for L(D), the projection for L(P)): the
duality α_D = α_P holds exactly, in law. Its spectral value is the deterministic equivalent L = Dκ/S with
Σ_i λ_i/(λ_i + κ) = D (:func:`deterministic_equivalent`); an oracle student that keeps the top D eigenfeatures
would instead leave the tail (1/S) Σ_{i>D} λ_i ≈ D^{-α}/(αS) (:func:`tail_sum`).

**Kernel spectra on the sphere.** A dot-product kernel κ(x·x'/d) on S^{d-1} (radius √d) has the spherical
harmonics of degree k as eigenfunctions, with multiplicity N(d, k) and eigenvalue (Funk-Hecke)
μ_k = c_d ∫ κ(t) P_k^{(d)}(t) (1 - t²)^{(d-3)/2} dt, c_d = Γ(d/2)/(√π Γ((d-1)/2)), for the uniform probability
measure (:func:`funk_hecke`, :func:`kernel_spectrum` for the package's NNGP and NTK). If μ_k ∝ k^{-β}, the sorted
eigenvalues fall like i^{-β/(d-1)}, i.e. α = β/(d-1) - 1 (:func:`implied_exponent`).

**Geometry.** D uniform points on a d-dimensional manifold: nearest-neighbour distances ∝ D^{-1/d}
(:func:`nearest_neighbour_distance`, exact on a flat torus), hence an MSE ∝ D^{-4/d} for a piecewise-linear
interpolant (error ∝ h² |∇²f|).

:func:`fit_power_law` (from :mod:`theory.stats`) fits L = C₀ x^{-α} + C_∞ (or C₀ x^{-α}) with a profile-likelihood
confidence interval.
"""

from functools import lru_cache
from typing import NamedTuple

import mpmath
import numpy as np
import scipy.optimize
import sympy as sp

from . import _validate
from . import double_descent as dd
from .derive import Option, topic
from .kernels import kernels, nngp_ntk
from .numeric import lambdify, lambdify_mpmath
from .stats import PowerLawFit, fit_power_law
from .symbols import g11, g12, g22

__all__ = ["alpha", "beta", "D", "P", "S", "kappa", "k", "d", "i", "L_inf",
           "power_law_spectrum", "tail_sum", "deterministic_equivalent", "power_law_limit", "spectral_loss", "student_teacher_loss",
           "variance_limited_excess",
           "fit_power_law", "PowerLawFit",
           "multiplicity", "legendre", "legendre_recurrence", "zonal_harmonic", "funk_hecke", "kernel_spectrum",
           "KernelSpectrum", "implied_exponent",
           "sphere_kernel", "nearest_neighbour_distance", "interpolation_exponent"]

#: Spectral exponent α (λ_i ∝ i^{-(1+α)}), eigenvalue decay β (μ_k ∝ k^{-β}), data D, parameters P, teacher
#: features S, the deterministic-equivalent scale κ, the degree k of a spherical harmonic, dimension d, index i.
alpha, beta = sp.symbols("alpha beta", positive=True)
D, P, S = sp.symbols("D P S", positive=True)
kappa = sp.Symbol("kappa", positive=True)
k = sp.Symbol("k", integer=True, nonnegative=True)
d = sp.Symbol("d", integer=True, positive=True)
i = sp.Symbol("i", integer=True, positive=True)
#: The loss's limit L_∞ at the fixed side (P features for L(D), D samples for L(P)) of the variance-limited regime.
L_inf = sp.Symbol("L_infinity", positive=True)
_t, _theta, _lam = sp.Symbol("t", real=True), sp.Symbol("theta", nonnegative=True), sp.Symbol("lambda", positive=True)


# --------------------------------------------------------------------------------------------------------------
# Student-teacher random features
# --------------------------------------------------------------------------------------------------------------


def power_law_spectrum(size, exponent):
    """λ_i = i^{-(1+α)}, i = 1..size (the lambdified SymPy term)."""
    size = _validate.count(size, "size", 1)
    a = _validate.variance(exponent, "exponent", positive=True)
    return lambdify((i, alpha), i ** (-(1 + alpha)))(np.arange(1, size + 1), a)


@lru_cache(maxsize=1)
def tail_sum():
    """[Σ_{i>D} i^{-(1+α)} (a Hurwitz zeta), its integral approximation D^{-α}/α] (the oracle student's loss × S)."""
    term = i ** (-(1 + alpha))
    x = sp.Symbol("x", positive=True)
    return [sp.Sum(term, (i, D + 1, sp.oo)).doit(),
            sp.simplify(sp.integrate(term.xreplace({i: x}), (x, D, sp.oo), conds="none"))]


@lru_cache(maxsize=1)
def deterministic_equivalent():
    """The spectral theory of ridgeless regression with an isotropic teacher: [Σ_i λ_i/(λ_i + κ) = D, L = Dκ/S].

    The omniscient risk E₀ Σ_i λ_i v_i² (1 - L_i)² with v_i² = 1/S, L_i = λ_i/(λ_i + κ), E₀ = D/(D - Σ L_i²)
    (Bordelon, Canatar & Pehlevan 2020; Simon et al. 2021) simplifies to Dκ/S when Σ_i L_i = D (ridgeless).
    """
    lam_i = sp.Indexed(sp.IndexedBase("lambda"), i)
    return [sp.Eq(sp.Sum(lam_i / (lam_i + kappa), (i, 1, S)), D), sp.Eq(sp.Symbol("L"), D * kappa / S)]


@lru_cache(maxsize=1)
def power_law_limit():
    """[κ(D), L(D)] for λ_i = i^{-(1+α)}, S -> ∞: the sum becomes ∫₀^∞ dx/(1 + κx^{1+α}), so L ∝ D^{-α}/S."""
    u = sp.Symbol("u", positive=True)
    integral = sp.integrate(1 / (1 + u ** (1 + alpha)), (u, 0, sp.oo), conds="none") * kappa ** (-1 / (1 + alpha))
    kappa_of_d = sp.solve(sp.Eq(integral, D), kappa)[0]
    loss = deterministic_equivalent()[1]
    return [sp.Eq(kappa, kappa_of_d), sp.Eq(loss.lhs, sp.powsimp(sp.expand_power_base(
        loss.rhs.xreplace({kappa: kappa_of_d}), force=True)))]


def spectral_loss(spectrum, sizes):
    """The deterministic equivalent L = Dκ/S of the P -> ∞ loss (equivalently the D -> ∞ loss with P features).

    ``spectrum`` holds λ_1..λ_S; κ solves Σ_i λ_i/(λ_i + κ) = D for each D in ``sizes`` (D < S).
    """
    lam_ = np.asarray(spectrum, dtype=np.float64)
    if lam_.ndim != 1 or not np.all(lam_ > 0):
        raise ValueError("spectrum: expected a 1-D array of positive eigenvalues")
    sizes = np.atleast_1d(np.asarray(sizes, dtype=np.float64))
    if np.any((sizes <= 0) | (sizes >= lam_.size)):
        raise ValueError(f"sizes: expected 0 < D < S = {lam_.size}, got {sizes}")
    summand = deterministic_equivalent()[0].lhs.function  # λ_i/(λ_i + κ)
    term = lambdify((_lam, kappa), summand.xreplace({next(iter(summand.atoms(sp.Indexed))): _lam}))
    loss = lambdify((D, kappa, S), deterministic_equivalent()[1].rhs)
    out = []
    for size in sizes:  # Σ λ/(λ + κ) falls from S (κ -> 0) to below D at κ = Σλ/D: bracket log κ
        log_kappa = scipy.optimize.brentq(lambda u: np.sum(term(lam_, np.exp(u))) - size, -700.0,
                                          np.log(lam_.sum() / size), xtol=1e-13)
        out.append(float(loss(size, np.exp(log_kappa), lam_.size)))
    return np.array(out)


def student_teacher_loss(spectrum, projection, data):
    """The exact test loss, averaged over x and ω ~ N(0, I/S), of the least-squares student on one draw.

    ``spectrum`` is λ_1..λ_S (C = diag λ); ``projection`` the P×S matrix 𝒫 (iid N(0, 1) in the model) or None for
    P -> ∞; ``data`` the D×S teacher features of the samples (rows N(0, C)) or None for D -> ∞. With θ̂ = Aω the
    min-norm least-squares fit, L = (1/S) tr[(I - 𝒫ᵀA)ᵀ C (I - 𝒫ᵀA)]. P = ∞ is interpolation with the teacher kernel
    (𝒫ᵀA = the projector on the data's row space), D = ∞ the population fit θ* = (𝒫C𝒫ᵀ)⁻¹𝒫Cω; both are
    tr C - tr[(ZCZᵀ)⁻¹ Z C² Zᵀ] with Z the data (whitened) or the projection: the duality.
    """
    lam_ = np.asarray(spectrum, dtype=np.float64)
    if lam_.ndim != 1 or not np.all(lam_ > 0):
        raise ValueError("spectrum: expected a 1-D array of positive eigenvalues")
    size = lam_.size
    mats = []
    for name, m in (("projection", projection), ("data", data)):
        if m is not None:
            m = np.asarray(m, dtype=np.float64)
            if m.ndim != 2 or m.shape[1] != size or m.shape[0] < 1:
                raise ValueError(f"{name}: expected a 2-D array with {size} columns (one per teacher feature), "
                                 f"got shape {m.shape}")
        mats.append(m)
    proj, data = mats
    if proj is None and data is None:
        raise ValueError("projection, data: at most one of them may be None (infinite)")
    if proj is None or data is None:
        z = data if proj is None else proj * np.sqrt(lam_)  # rows ~ N(0, C)
        zc = z * np.sqrt(lam_)                               # Z C Zᵀ = z zᵀ and Z C² Zᵀ = zc zcᵀ (z = Z C^{1/2})
        return float((lam_.sum() - np.trace(np.linalg.lstsq(z @ z.T, zc @ zc.T, rcond=None)[0])) / size)
    student = data @ proj.T                                   # D × P
    if proj.shape[0] <= data.shape[0]:
        a = np.linalg.lstsq(student, data, rcond=None)[0]     # A = f⁺F (P × S)
        cross = np.sum(proj * a * lam_)
        quad = np.sum(a * ((proj * lam_) @ proj.T @ a))
    else:                                                     # 𝒫ᵀA = Q F with Q = 𝒫ᵀfᵀ(ffᵀ)⁻¹ (S × D)
        q = np.linalg.lstsq(student @ student.T, student @ proj, rcond=None)[0].T
        cross = np.sum(lam_[:, None] * q * data.T)
        quad = np.sum((q.T * lam_) @ q * (data @ data.T))
    return float((lam_.sum() - 2 * cross + quad) / size)


@lru_cache(maxsize=1)
def variance_limited_excess():
    r"""[E L(D) - L_∞ at P fixed student features, E L(P) - L_∞ on D fixed samples]: L_∞ P/(D - P - 1) and
    L_∞ D/(P - D - 1), exact for D > P + 1 (resp. P > D + 1); both ∝ 1/x with coefficient P L_∞ (resp. D L_∞).

    Fixed 𝒫, D samples: the teacher's output is f(x)·θ* + ε(x), where θ* is the population fit and ε(x) is Gaussian,
    uncorrelated with the Gaussian student features f(x) and hence independent of them, with E_ω Var ε = L_∞ (the
    D = ∞ loss). Least squares on D Gaussian samples with P features and noise variance σ² = L_∞ then has the exact
    excess risk σ²P/(D - P - 1) (the mean of an inverse Wishart matrix; the p < n - 1 branch of
    :func:`theory.double_descent.ridgeless_formula` with ``finite=True``; Breiman & Freedman 1983; Hastie,
    Montanari, Rosset & Tibshirani 2022). Fixed data, P features: the loss
    (1/S)‖C^{1/2} - C^{1/2} Z_pᵀ(Z_d C^{1/2} Z_pᵀ)⁺ Z_d C^{1/2}‖²_F (Z_d the whitened data, Z_p the projection) is
    unchanged when Z_d and Z_p are swapped (transpose it), so L(P) on D samples is L(D) at P features: D <-> P.
    """
    finite = dd.ridgeless_formula(finite=True)
    below = next(expr for expr, cond in finite.args if cond == (dd.p < dd.n - 1))  # the branch P < D - 1
    by_data = below.xreplace({dd.sigma2: L_inf, dd.p: P, dd.n: D})
    return [by_data, by_data.xreplace({D: P, P: D})]


# --------------------------------------------------------------------------------------------------------------
# Dot-product kernels on the sphere
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def multiplicity():
    """N(d, k) = (2k + d - 2)(k + d - 3)!/(k!(d - 2)!), the number of degree-k spherical harmonics on S^{d-1}, d >= 3."""
    return (2 * k + d - 2) * sp.rf(k + 1, d - 3) / sp.gamma(d - 1)


@lru_cache(maxsize=1)
def legendre():
    """P_k^{(d)}(t) = C_k^{((d-2)/2)}(t)/C_k^{((d-2)/2)}(1), the Legendre polynomial of dimension d (P_k(1) = 1)."""
    return sp.gegenbauer(k, (d - 2) / sp.Integer(2), _t) * sp.gamma(d - 2) / sp.rf(k + 1, d - 3)


def _funk_hecke_parts():
    """(c_d, the weight P_k^{(d)}(t) (1 - t²)^{(d-3)/2}) of the Funk-Hecke integral."""
    c_d = sp.gamma(d / sp.Integer(2)) / (sp.sqrt(sp.pi) * sp.gamma((d - 1) / sp.Integer(2)))
    return c_d, legendre() * (1 - _t**2) ** ((d - 3) / sp.Integer(2))


@lru_cache(maxsize=1)
def funk_hecke():
    """μ_k = c_d ∫_{-1}^{1} κ(t) P_k^{(d)}(t) (1 - t²)^{(d-3)/2} dt, the eigenvalues of κ(x·x') for the uniform measure."""
    c_d, weight = _funk_hecke_parts()
    return sp.Eq(sp.Symbol("mu_k"), c_d * sp.Integral(sp.Function("kappa")(_t) * weight, (_t, -1, 1)))


@lru_cache(maxsize=1)
def _angular_parts():
    """(c_d, the Jacobian) of the Funk-Hecke integral in θ (t = cos θ, dt = sin θ dθ, 1 - t² = sin² θ):
    μ_k = c_d ∫_0^π κ(cos θ) P_k^{(d)}(cos θ) sin^{d-2} θ dθ."""
    c_d, weight = _funk_hecke_parts()
    in_theta = (weight / legendre()).xreplace({_t: sp.cos(_theta)}).xreplace({1 - sp.cos(_theta) ** 2:
                                                                             sp.sin(_theta) ** 2})
    return c_d, sp.powsimp(in_theta * sp.sin(_theta))


def zonal_harmonic(degree, dim, X, direction):
    """Y(x) = √N(d, k) P_k^{(d)}(u·x/|x|), the degree-k spherical harmonic on S^{d-1} symmetric about the unit vector
    u = ``direction``, normalized to E[Y²] = 1 under the uniform measure (E[P_k^{(d)}(u·x)²] = 1/N(d, k)); rows of
    ``X`` (N, d) are points of any nonzero norm. Harmonics of different degrees are orthogonal.
    """
    dim = _validate.count(dim, "dim", 3)
    degree = _validate.count(degree, "degree")
    X = np.asarray(X, dtype=np.float64)
    u = np.asarray(direction, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != dim or u.shape != (dim,):
        raise ValueError(f"X, direction: expected points of shape (N, {dim}) and a vector of shape ({dim},), "
                         f"got {X.shape} and {u.shape}")
    norms, size = np.linalg.norm(X, axis=1), np.linalg.norm(u)
    if np.any(norms == 0) or size == 0 or not np.all(np.isfinite(X)) or not np.isfinite(size):
        raise ValueError("X, direction: expected finite nonzero points and a finite nonzero direction")
    t = np.clip(X @ u / (norms * size), -1.0, 1.0)
    return lambdify((k, d, _t), sp.sqrt(multiplicity()) * legendre())(degree, dim, t)


def sphere_kernel(theta, activation="relu", depth=1, kind="ntk", sigma_w2=2.0, sigma_b2=0.0):
    """κ(cos θ): the package's NNGP or NTK (``kind``) between two inputs of norm √d at angle θ (any d)."""
    if kind not in ("nngp", "ntk"):
        raise ValueError(f"kind: expected 'nngp' or 'ntk', got {kind!r}")
    th = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    x1 = np.array([[np.sqrt(2.0), 0.0]])
    x2 = np.sqrt(2.0) * np.stack([np.cos(th.ravel()), np.sin(th.ravel())], axis=1)
    out = getattr(nngp_ntk(x1, x2, activation, depth, sigma_w2, sigma_b2), kind)[0]
    return out.reshape(th.shape)


@lru_cache(maxsize=1)
def legendre_recurrence():
    """(A_k, B_k) with P_{k+1}^{(d)}(t) = A_k t P_k^{(d)}(t) - B_k P_{k-1}^{(d)}(t), k >= 1 (P_0 = 1, P_1 = t).

    Derived from Gegenbauer's (k + 1) C_{k+1}^λ = 2(k + λ) t C_k^λ - (k + 2λ - 1) C_{k-1}^λ, λ = (d - 2)/2, and the
    normalization P_k^{(d)} = C_k^λ / C_k^λ(1) of :func:`legendre`: A_k = (2k + d - 2)/(k + d - 2), B_k = k/(k + d - 2).
    """
    lam_ = (d - 2) / sp.Integer(2)
    norm = legendre() / sp.gegenbauer(k, lam_, _t)  # 1/C_k^λ(1) as a function of k

    def ratio(j):
        return norm.xreplace({k: k + 1}) / norm.xreplace({k: j})

    return (sp.factor(sp.combsimp(2 * (k + lam_) / (k + 1) * ratio(k))),
            sp.factor(sp.combsimp((k + 2 * lam_ - 1) / (k + 1) * ratio(k - 1))))


#: Fixed-point bits of the arbitrary-precision Funk-Hecke sums (and mpmath's working precision, plus a margin for
#: the digits that the angle map loses near θ = 0).
_BITS = 224
#: Eigenvalues known to this fraction of the largest one count as resolved (zero at the precision carried).
ZERO = 1e-40
#: Relative accuracy of kernels computed by a float64 quadrature helper (README, "Accuracy"): their eigenvalues are
#: known only to this fraction of Σ_j |weight_j κ_j P_k(t_j)|.
_HELPER_ACCURACY = 1e-12


class KernelSpectrum(NamedTuple):
    """Degrees k = 0..k_max, Funk-Hecke eigenvalues μ_k, multiplicities N(d, k) and an error bound per μ_k.

    ``error`` bounds |μ_k - exact|: the difference to the half-size Clenshaw-Curtis rule (which overestimates the
    full rule's error) plus the rounding of the kernel values. ``reliable`` is the highest degree up to which every
    μ_k is known to 0.1 % of itself (or of a neighbour, where a parity zero makes μ_k vanish) or to
    :data:`ZERO` of the largest eigenvalue (a μ_k that is zero at the precision carried).
    """

    degree: np.ndarray
    eigenvalue: np.ndarray
    multiplicity: np.ndarray
    error: np.ndarray

    @property
    def reliable(self):
        scale = np.abs(self.eigenvalue)
        near = np.maximum(scale, np.maximum(np.r_[scale[1:], 0.0], np.r_[0.0, scale[:-1]]))
        bad = np.flatnonzero((self.error > 1e-3 * near) & (self.error > ZERO * scale.max(initial=0.0)))
        return int(self.degree[-1] if bad.size == 0 else self.degree[bad[0]] - 1)

    def sorted(self):
        """All eigenvalues with their multiplicities, in decreasing order (the i-th eigenvalue λ_i)."""
        return np.sort(np.repeat(self.eigenvalue, self.multiplicity.astype(int)))[::-1]


@lru_cache(maxsize=8)
def _clenshaw_curtis(nodes):
    """Fixed-point (2^-_BITS) Clenshaw-Curtis weights on [-1, 1] for x_j = cos(jπ/N), j = 0..N (N even), from the
    fixed-point cosines c_i = cos(iπ/N), i < 2N: w_j = (c_j/N)(1 - Σ_{m<=N/2} b_m cos(2mjπ/N)/(4m² - 1)), b_{N/2} = 1,
    else 2 (Waldvogel 2006)."""
    with mpmath.workprec(_BITS + 32):
        cos = np.array([int(mpmath.nint(mpmath.ldexp(mpmath.cospi(mpmath.mpf(i) / nodes), _BITS)))
                        for i in range(2 * nodes)], dtype=object)
    j = np.arange(nodes + 1)
    total = np.full(nodes + 1, 1 << _BITS, dtype=object)
    for m in range(1, nodes // 2 + 1):
        total = total - ((1 if 2 * m == nodes else 2) * cos[(2 * m * j) % (2 * nodes)]) // (4 * m * m - 1)
    ends = np.where((j == 0) | (j == nodes), 1, 2)
    return cos[: nodes + 1], total * ends // nodes


def _sphere_values(theta, activation, depth, kind, sigma_w2, sigma_b2):
    """κ(cos θ) at mpmath angles ``theta`` as fixed-point integers, and their relative accuracy (0: exact to
    2^-_BITS, from the kernel printed for mpmath with σ_w², σ_b² as the exact binary values of the floats given;
    _HELPER_ACCURACY: from the float64 kernel, when the kernel needs a float64 quadrature helper)."""
    try:
        recursion = kernels(activation, depth, sp.Rational(float(sigma_w2)), sp.Rational(float(sigma_b2)))
        expr = getattr(recursion, kind).xreplace({g11: 1, g22: 1})
        kappa = lambdify_mpmath([g12], expr)
    except ValueError:
        values = sphere_kernel(np.array([float(th) for th in theta]), activation, depth, kind, sigma_w2, sigma_b2)
        return np.array([int(mpmath.nint(mpmath.ldexp(v, _BITS))) for v in values], dtype=object), _HELPER_ACCURACY
    with mpmath.workprec(_BITS + 64):
        return np.array([int(mpmath.nint(mpmath.ldexp(kappa(mpmath.cos(th)), _BITS))) for th in theta],
                        dtype=object), 0.0


def kernel_spectrum(dim, k_max, activation="relu", depth=1, kind="ntk", sigma_w2=2.0, sigma_b2=0.0, nodes=None):
    r"""The eigenvalues μ_k (k <= k_max) of the package's NNGP/NTK on S^{dim-1}, by the Funk-Hecke formula.

    μ_k = c_d ∫_0^π κ(cos θ) P_k^{(d)}(cos θ) sin^{d-2}θ dθ is taken in θ, where the integrand is analytic even
    where κ(t) is not at t = ±1 (ReLU), by Clenshaw-Curtis quadrature with ``nodes`` (even; default
    2⌈1.1 (π/2)(k_max + d) + 60⌉, so that the half rule, the error estimate, also resolves degree k_max) nodes in
    exact fixed-point arithmetic (Python integers, 2^-224): the kernel values come from the symbolic kernel printed
    for mpmath (:func:`theory.numeric.lambdify_mpmath`) at 288 bits, the P_k^{(d)} from the derived three-term
    recurrence (:func:`legendre_recurrence`). The sum cancels from O(κ(1)) down to μ_k ~ k^{-d} (2e-18 for the
    depth-2 ReLU NTK at k = 400, d = 8; 6e-23 for its NNGP), which float64 cannot resolve below ~1e-16 κ(1); these
    sums resolve it. Kernels without an mpmath form (a float64 quadrature helper: tanh, softplus, ...) are summed
    from float64 values: their μ_k carry an error ~1e-12 Σ|terms| and stop being reliable there (``error``,
    ``reliable``).
    Cost: about N evaluations of the kernel in mpmath (~0.5 ms each at depth 2) and 4 k_max N integer operations:
    ~2 s for k_max = 400.
    """
    dim = _validate.count(dim, "dim", 3)
    k_max = _validate.count(k_max, "k_max")
    if kind not in ("nngp", "ntk"):
        raise ValueError(f"kind: expected 'nngp' or 'ntk', got {kind!r}")
    sigma_w2, sigma_b2 = _validate.variance(sigma_w2, "sigma_w2"), _validate.variance(sigma_b2, "sigma_b2")
    sphere_kernel(0.0, activation, depth, kind, sigma_w2, sigma_b2)  # the kernels' own checks (e.g. an infinite NTK)
    if nodes is None:
        nodes = 2 * int(np.ceil(1.1 * np.pi / 2 * (k_max + dim) + 60))
    nodes = _validate.count(nodes, "nodes", 4)
    if nodes % 2:
        raise ValueError(f"nodes: expected an even number of Clenshaw-Curtis nodes (the half rule is the error "
                         f"estimate), got {nodes}")
    x, fine = _clenshaw_curtis(nodes)
    coarse = np.zeros(nodes + 1, dtype=object)
    coarse[::2] = _clenshaw_curtis(nodes // 2)[1]
    unit = mpmath.mpf(2) ** -_BITS
    c_d, jacobian = (e.xreplace({d: dim}) for e in _angular_parts())
    jacobian = lambdify_mpmath([_theta], jacobian)
    with mpmath.workprec(_BITS + 32):
        theta = [mpmath.pi / 2 * (1 - mpmath.mpf(v) * unit) for v in x]  # θ = π(1 - x)/2 on [0, π]
        t = np.array([int(mpmath.nint(mpmath.ldexp(mpmath.cos(th), _BITS))) for th in theta], dtype=object)
        jacobian = np.array([int(mpmath.nint(mpmath.ldexp(jacobian(th), _BITS))) for th in theta], dtype=object)
    values, accuracy = _sphere_values(theta, activation, depth, kind, sigma_w2, sigma_b2)
    weighted = values * jacobian >> _BITS
    rows = [weighted * fine >> _BITS, weighted * coarse >> _BITS]
    coefficients = lambdify((k, d), [part for e in legendre_recurrence() for part in sp.fraction(e)])
    an, ad, bn, bd = (np.rint(c).astype(np.int64).tolist() for c in coefficients(np.arange(k_max + 1), dim))
    prev, cur = np.zeros(nodes + 1, dtype=object), np.full(nodes + 1, 1 << _BITS, dtype=object)
    sums = np.zeros((3, k_max + 1), dtype=object)
    for degree in range(k_max + 1):
        sums[:2, degree] = [row.dot(cur) for row in rows]
        if accuracy:
            sums[2, degree] = np.abs(rows[0]).dot(np.abs(cur))
        if degree == 0:
            prev, cur = cur, t.copy()
            continue
        j = degree
        prev, cur = cur, (an[j] * bd[j] * (t * cur >> _BITS) - bn[j] * ad[j] * prev) // (ad[j] * bd[j])
    with mpmath.workprec(_BITS + 32):
        scale = mpmath.mpf(c_d.evalf(100)._mpf_) * mpmath.pi / 2 * unit**2
        mu, mu_half, size = ([float(mpmath.mpf(v) * scale) for v in row] for row in sums)
    mu, mu_half, size = (np.array(v) for v in (mu, mu_half, size))
    error = np.abs(mu - mu_half) + accuracy * size + (nodes * (k_max + 2)) * float(scale) * 2.0**_BITS * 4
    degrees = np.arange(k_max + 1)
    counts = lambdify((k, d), multiplicity())(degrees, dim)
    return KernelSpectrum(degrees, mu, np.rint(counts), error)


@lru_cache(maxsize=1)
def implied_exponent():
    """α = β/(d - 1) - 1: if μ_k ∝ k^{-β}, the eigenvalues above μ_K number Σ_{k<=K} N(d, k) ∝ K^{d-1} (N(d, k) ∝ k^{d-2}),
    so the i-th largest is λ_i ∝ i^{-β/(d-1)} = i^{-(1+α)}."""
    big_k, index, x, m = sp.symbols("K i_K x m", positive=True)
    count = sp.integrate(x**m, (x, 0, big_k)).xreplace({m: d - 2})  # ∝ K^{d-1}
    k_of_i = sp.solve(sp.Eq(index, big_k ** sp.expand_log(sp.log(count), force=True).coeff(sp.log(big_k))), big_k)[0]
    decay = -sp.expand_log(sp.log((big_k ** -beta).xreplace({big_k: k_of_i})), force=True) / sp.log(index)
    return sp.simplify(decay - 1)


# --------------------------------------------------------------------------------------------------------------
# Geometry: nearest neighbours and piecewise-linear interpolation
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def nearest_neighbour_distance():
    """E|x - x_NN| for D uniform points and an independent query on a flat d-torus of unit volume.

    P(r_NN > r) = (1 - V_d r^d)^D with V_d = π^{d/2}/Γ(d/2 + 1); with u = V_d r^d, E r = ∫ P(r_NN > r) dr becomes
    V_d^{-1/d}/d ∫₀¹ u^{1/d-1} (1 - u)^D du = V_d^{-1/d} B(1/d, D + 1)/d ∝ D^{-1/d} (exact while the ball fits in the
    torus, up to (1 - V_d 2^{-d})^D).
    """
    r, u = sp.symbols("r u", positive=True)
    volume = sp.pi ** (d / sp.Integer(2)) / sp.gamma(d / sp.Integer(2) + 1)
    survival = (1 - volume * r**d) ** D
    to_u = {r: (u / volume) ** (1 / d)}
    integrand = sp.powsimp(survival.xreplace(to_u) * sp.diff(to_u[r], u), force=True)  # u^{1/d-1}(1-u)^D V^{-1/d}/d
    weight = sp.simplify(integrand / (u ** (1 / d - 1) * (1 - u) ** D))
    assert not weight.has(u), weight
    return sp.gammasimp(weight * sp.beta(1 / d, D + 1).rewrite(sp.gamma))


def interpolation_exponent():
    """4/d: a piecewise-linear interpolant errs by O(h²) with h ∝ D^{-1/d}, so its MSE falls like D^{-4/d}."""
    h = D ** (-1 / d)
    return -sp.simplify(sp.log((h**2) ** 2) / sp.log(D))


# --------------------------------------------------------------------------------------------------------------
# theory derive
# --------------------------------------------------------------------------------------------------------------


def _integer(text):
    value = int(text)
    if value < 3:
        raise ValueError(f"expected an integer >= 3, got {value}")
    return value


@topic("scaling", "resolution-limited scaling of the student-teacher model: tail sum and deterministic equivalent")
def _derive_scaling():
    exact, approx = tail_sum()
    tail = sp.Symbol("T(D)")
    return [sp.Eq(tail, exact, evaluate=False), sp.Eq(tail, approx, evaluate=False), *deterministic_equivalent(),
            *power_law_limit(),
            sp.Eq(sp.Symbol("alpha_D"), alpha), sp.Eq(sp.Symbol("alpha_P"), alpha)]


@topic("kernel_spectrum", "eigenvalues of a dot-product kernel on S^{d-1}: Funk-Hecke, multiplicities, exponent",
       Option("dim", None, "the sphere's ambient dimension d >= 3 (default: the symbol d)", _integer))
def _derive_kernel_spectrum(dim):
    eqs = [funk_hecke(), sp.Eq(sp.Symbol("N(d, k)"), multiplicity(), evaluate=False),
           sp.Eq(sp.Symbol("P_k^(d)(t)"), legendre(), evaluate=False), sp.Eq(alpha, implied_exponent())]
    return eqs if dim is None else [e.xreplace({d: dim}) for e in eqs]


@topic("nearest_neighbour", "expected nearest-neighbour distance of D uniform points on a flat d-torus, and 4/d")
def _derive_nearest_neighbour():
    return [sp.Eq(sp.Symbol("E r_NN"), nearest_neighbour_distance(), evaluate=False),
            sp.Eq(sp.Symbol("alpha_interp"), interpolation_exponent(), evaluate=False)]
