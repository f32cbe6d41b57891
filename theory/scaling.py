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

import numpy as np
import scipy.optimize
import sympy as sp

from . import _validate
from .derive import Option, topic
from .kernels import nngp_ntk
from .numeric import lambdify
from .stats import PowerLawFit, fit_power_law

__all__ = ["alpha", "beta", "D", "P", "S", "kappa", "k", "d", "i",
           "power_law_spectrum", "tail_sum", "deterministic_equivalent", "power_law_limit", "spectral_loss", "student_teacher_loss",
           "fit_power_law", "PowerLawFit",
           "multiplicity", "legendre", "funk_hecke", "kernel_spectrum", "KernelSpectrum", "implied_exponent",
           "sphere_kernel", "nearest_neighbour_distance", "interpolation_exponent"]

#: Spectral exponent α (λ_i ∝ i^{-(1+α)}), eigenvalue decay β (μ_k ∝ k^{-β}), data D, parameters P, teacher
#: features S, the deterministic-equivalent scale κ, the degree k of a spherical harmonic, dimension d, index i.
alpha, beta = sp.symbols("alpha beta", positive=True)
D, P, S = sp.symbols("D P S", positive=True)
kappa = sp.Symbol("kappa", positive=True)
k = sp.Symbol("k", integer=True, nonnegative=True)
d = sp.Symbol("d", integer=True, positive=True)
i = sp.Symbol("i", integer=True, positive=True)
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
def _angular_weight():
    """The Funk-Hecke weight in θ (t = cos θ, dt = sin θ dθ, 1 - t² = sin² θ): c_d P_k^{(d)}(cos θ) sin^{d-2} θ."""
    c_d, weight = _funk_hecke_parts()
    in_theta = weight.xreplace({_t: sp.cos(_theta)}).xreplace({1 - sp.cos(_theta) ** 2: sp.sin(_theta) ** 2})
    return lambdify((k, d, _theta), sp.powsimp(c_d * in_theta * sp.sin(_theta)))


def sphere_kernel(theta, activation="relu", depth=1, kind="ntk", sigma_w2=2.0, sigma_b2=0.0):
    """κ(cos θ): the package's NNGP or NTK (``kind``) between two inputs of norm √d at angle θ (any d)."""
    if kind not in ("nngp", "ntk"):
        raise ValueError(f"kind: expected 'nngp' or 'ntk', got {kind!r}")
    th = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    x1 = np.array([[np.sqrt(2.0), 0.0]])
    x2 = np.sqrt(2.0) * np.stack([np.cos(th.ravel()), np.sin(th.ravel())], axis=1)
    out = getattr(nngp_ntk(x1, x2, activation, depth, sigma_w2, sigma_b2), kind)[0]
    return out.reshape(th.shape)


class KernelSpectrum(NamedTuple):
    """Degrees k = 0..k_max, Funk-Hecke eigenvalues μ_k and multiplicities N(d, k)."""

    degree: np.ndarray
    eigenvalue: np.ndarray
    multiplicity: np.ndarray

    def sorted(self):
        """All eigenvalues with their multiplicities, in decreasing order (the i-th eigenvalue λ_i)."""
        return np.sort(np.repeat(self.eigenvalue, self.multiplicity.astype(int)))[::-1]


def kernel_spectrum(dim, k_max, activation="relu", depth=1, kind="ntk", sigma_w2=2.0, sigma_b2=0.0, nodes=None):
    """The eigenvalues μ_k (k <= k_max) of the package's NNGP/NTK on S^{dim-1}, by the Funk-Hecke formula.

    The integral is taken in θ (t = cos θ) by Gauss-Legendre quadrature with ``nodes`` points (default
    4 k_max + 200): in θ the integrand is smooth on [0, π] even where κ(t) is not at t = ±1 (ReLU), so the
    quadrature converges exponentially and resolves μ_k down to ~1e-15 of κ(1).
    """
    dim = _validate.count(dim, "dim", 3)
    k_max = _validate.count(k_max, "k_max")
    nodes = 4 * k_max + 200 if nodes is None else _validate.count(nodes, "nodes", 2)
    x, w = np.polynomial.legendre.leggauss(nodes)
    theta = np.pi / 2 * (x + 1)
    values = sphere_kernel(theta, activation, depth, kind, sigma_w2, sigma_b2) * w * np.pi / 2
    degrees = np.arange(k_max + 1)
    mu = _angular_weight()(degrees[:, None], dim, theta[None, :]) @ values
    counts = lambdify((k, d), multiplicity())(degrees, dim)
    return KernelSpectrum(degrees, mu, np.rint(counts))


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
