"""Claims of the scaling-law topic: the four regimes of the student-teacher model, kernel spectra on the sphere and
the learning curves they imply, and resolution-limited scaling from geometry (Bahri, Dyer, Kaplan, Lee & Sharma)."""

import math
from functools import lru_cache

import numpy as np
import scipy.interpolate
import scipy.linalg
import scipy.spatial
import sympy as sp

from .. import scaling as sc
from ..numeric import lambdify
from .base import claim, combine, compare, compare_all, profile_law, seed_for, sized

SOURCE = "Bahri, Dyer, Kaplan, Lee & Sharma 2021, Explaining neural scaling laws; lecture notes 000/004"
ALPHA, S_RES, S_VAR = 1.0, 1024, 128  # spectrum λ_i = i^{-(1+α)}; teacher features (resolution / variance-limited)
KERNEL = dict(activation="relu", depth=2, sigma_w2=2.0, sigma_b2=0.1)  # the network whose NNGP/NTK is studied
SPHERE = 3  # inputs on S^2 ⊂ R^3


def _rng(seed, *keys):
    return np.random.default_rng(seed_for(seed, *keys))


def _ensemble(values):
    values = np.asarray(values, dtype=np.float64)
    return values.mean(axis=-1), values.std(axis=-1, ddof=1) / np.sqrt(values.shape[-1])


def _exponent_result(fit, predicted, x, y, y_se, labels, rivals, data=None):
    """A Result from a :class:`theory.stats.PowerLawFit`: the profile-likelihood test accepts ``predicted`` and
    rejects every rival exponent."""

    def plot(fig):
        ax = fig.add_subplot()
        ax.errorbar(x, y, yerr=2 * np.asarray(y_se), fmt="o", capsize=3, label="measured (2 SE)")
        grid = np.geomspace(min(x), max(x), 100)
        ax.plot(grid, fit(grid), "-", label=f"fit: exponent {fit.exponent:.3f}")
        anchor = fit(grid[-1]) - fit.offset
        ax.plot(grid, anchor * (grid / grid[-1]) ** (-predicted) + fit.offset, "k--", label=f"predicted exponent {predicted:g}")
        ax.set(xscale="log", yscale="log", xlabel=labels[0], ylabel=labels[1], title=labels[2])
        ax.legend()

    return profile_law(fit, predicted, rivals=rivals, plot=plot,
                       data={"x": np.asarray(x), "y": np.asarray(y), "y_se": np.asarray(y_se), "fit": fit, **(data or {})})


def _alpha_eq(name, value):
    return sp.Eq(sp.Symbol(name), sp.nsimplify(value))


# --------------------------------------------------------------------------------------------------------------
# Student-teacher random features: the four regimes
# --------------------------------------------------------------------------------------------------------------


def _variance_limited(seed, size, claim_id, fixed):
    """L - L_∞ at a fixed projection (P = 4 features, D varies, limit D = ∞) or a fixed data set (D = 4 samples,
    P varies, limit P = ∞), S = 128 teacher features, x = 16 .. 4096: the measured excess against its exact mean
    L_∞·4/(x - 5) (:func:`theory.scaling.variance_limited_excess`, no bias: exact at every x) and the exponent of
    C₀ x^{-a}(1 + b/x) fitted on x >= 64 (where the neglected (P + 1)²/x² of the exact curve is below 0.6 %).

    A draw costs ∝ x, its relative spread (~0.3-0.4, from the residual teacher features) does not fall with x:
    draws ∝ 1/x (between ``least`` and 4 ``base``) spread the cost evenly and make the small sizes the sharpest."""
    spectrum = sc.power_law_spectrum(S_VAR, ALPHA)
    sizes = 16 * 2 ** np.arange(9)
    base, least = sized(size, (40, 4), (300, 24), (1200, 96))
    held = _rng(seed, claim_id, "held").standard_normal((4, S_VAR))
    limit = (sc.student_teacher_loss(spectrum, held, None) if fixed == "projection"
             else sc.student_teacher_loss(spectrum, None, held * np.sqrt(spectrum)))
    rng = _rng(seed, claim_id)
    mean, se, counts = [], [], []
    for count in sizes:
        draws = int(np.clip(round(base * 256 / count), least, 4 * base))
        row = []
        for _ in range(draws):
            fresh = rng.standard_normal((count, S_VAR))
            row.append(sc.student_teacher_loss(spectrum, held, fresh * np.sqrt(spectrum)) if fixed == "projection"
                       else sc.student_teacher_loss(spectrum, fresh, held * np.sqrt(spectrum)))
        m, e = _ensemble(np.array(row) - limit)
        mean.append(m), se.append(e), counts.append(draws)
    mean, se = np.array(mean), np.array(se)
    excess = sc.variance_limited_excess()[0 if fixed == "projection" else 1]
    free = sc.D if fixed == "projection" else sc.P
    exact = lambdify((free, sc.L_inf), excess.xreplace({sc.P if fixed == "projection" else sc.D: 4}))(sizes, limit)
    tail = sizes >= 64
    fit = sc.fit_power_law(sizes[tail], mean[tail], se[tail], offset=False, correction=True,
                           se_dof=min(counts) - 1)
    return sizes, mean, se, exact, limit, fit


def _variance_limited_result(sizes, mean, se, exact, limit, fit, labels, rival):
    """The exact mean curve (compare_all, rival: its asymptote 4 L_∞/x) combined with the fitted exponent."""
    asymptote = 4 * limit / sizes
    curve = compare_all(exact, mean, se, rivals={"the asymptote 4 L_inf/x (no finite-x correction)": asymptote},
                        what="sizes")
    exponent = _exponent_result(fit, 1.0, sizes[sizes >= 64], mean[sizes >= 64], se[sizes >= 64], labels, rival)

    def plot(fig):
        ax = fig.add_subplot()
        ax.errorbar(sizes, mean, yerr=2 * se, fmt="o", capsize=3, label="measured L - L_inf (2 SE)")
        ax.plot(sizes, exact, "k-", label="exact mean 4 L_inf/(x - 5)")
        ax.plot(sizes, asymptote, "k:", label="asymptote 4 L_inf/x")
        ax.set(xscale="log", yscale="log", xlabel=labels[0], ylabel=labels[1], title=labels[2])
        ax.legend()

    return combine(curve, exponent, headline=1, plot=plot,
                   data={"sizes": sizes, "mean": mean, "se": se, "exact": exact, "limit": limit, "fit": fit})


@claim("scaling.variance_limited_data",
       "At a fixed number P = 4 of student features the loss approaches its $D \\to \\infty$ limit like $D^{-1}$ "
       "(variance-limited), in mean exactly as $L_\\infty P/(D - P - 1)$.", SOURCE, _alpha_eq("alpha_D", 1))
def _variance_limited_data(seed, size):
    return _variance_limited_result(*_variance_limited(seed, size, "scaling.variance_limited_data", "projection"),
                                    ("data D", "L(D) - L(infinity)", "P = 4 student features, S = 128"),
                                    {"D^-1/2 (a fluctuation)": 0.5})


@claim("scaling.variance_limited_params",
       "On a fixed data set of D = 4 points the loss approaches its $P \\to \\infty$ limit like $P^{-1}$ "
       "(variance-limited), in mean exactly as $L_\\infty D/(P - D - 1)$.", SOURCE, _alpha_eq("alpha_P", 1))
def _variance_limited_params(seed, size):
    return _variance_limited_result(*_variance_limited(seed, size, "scaling.variance_limited_params", "data"),
                                    ("student features P", "L(P) - L(infinity)", "D = 4 data points, S = 128"),
                                    {"P^-1/2 (a fluctuation)": 0.5})


@lru_cache(maxsize=4)
def _resolution(seed, size):
    """L(D) at P = ∞ and L(P) at D = ∞ (exact limits), S = 1024 teacher features, λ_i = i^-2."""
    spectrum = sc.power_law_spectrum(S_RES, ALPHA)
    sizes = np.unique(np.round(8 * 2 ** (np.arange(9) / 2)).astype(int))  # 8 .. 128
    draws = sized(size, 6, 16, 48)
    rng = _rng(seed, "scaling.resolution")
    by_data = [[sc.student_teacher_loss(spectrum, None, rng.standard_normal((m, S_RES)) * np.sqrt(spectrum))
                for _ in range(draws)] for m in sizes]
    by_params = [[sc.student_teacher_loss(spectrum, rng.standard_normal((m, S_RES)), None) for _ in range(draws)]
                 for m in sizes]
    return spectrum, sizes, _ensemble(by_data), _ensemble(by_params), draws - 1


def _resolution_result(seed, size, side, labels):
    """The resolution-limited loss on one side of the duality (``side`` 0: L(D) at P = ∞, 1: L(P) at D = ∞): its
    curve against the deterministic equivalent Dκ/S that predicts it (the bound Dκ/S · 1/D on the equivalent's
    O(1/D) error, as in ``scaling.duality``; rival: the oracle's tail sum) and the exponent α = 1 of
    C₀ x^{-a}(1 + b/x) + C_∞, the offset C_∞ standing in for the finite-S flattening."""
    spectrum, sizes, *sides, dof = _resolution(seed, size)
    mean, se = sides[side]
    theory = sc.spectral_loss(spectrum, sizes)
    tail = np.array([spectrum[m:].sum() for m in sizes]) / spectrum.size
    curve = compare_all(theory, mean, se, bias=theory / sizes, rivals={"the oracle's tail sum": tail}, what="sizes")
    fit = sc.fit_power_law(sizes, mean, se, offset=True, correction=True, se_dof=dof)
    exponent = _exponent_result(fit, ALPHA, sizes, mean - fit.offset, se, labels,
                                {"the spectrum's own decay 1 + alpha": 1 + ALPHA, "alpha/2": ALPHA / 2})

    def plot(fig):
        ax = fig.add_subplot()
        ax.errorbar(sizes, mean, yerr=2 * se, fmt="o", capsize=3, label="measured (2 SE)")
        ax.plot(sizes, theory, "k-", label="deterministic equivalent D kappa / S")
        ax.plot(sizes, tail, "k:", label="rival: the oracle's tail sum")
        ax.plot(sizes, fit(sizes), "--", label=f"fit: exponent {fit.exponent:.3f}")
        ax.set(xscale="log", yscale="log", xlabel=labels[0], ylabel="test loss", title=labels[2])
        ax.legend()

    return combine(curve, exponent, headline=1, plot=plot,
                   data={"sizes": sizes, "mean": mean, "se": se, "theory": theory, "fit": fit})


@claim("scaling.resolution_limited_data",
       "With $P \\to \\infty$ and teacher spectrum $\\lambda_i = i^{-2}$ the loss falls like $D^{-\\alpha}$ with "
       "$\\alpha = 1$ (resolution-limited; the finite-S offset and a 1/D correction are fitted), along the "
       "deterministic equivalent $D\\kappa/S$.", SOURCE,
       lambda: sc.power_law_limit()[1].xreplace({sc.alpha: 1}))
def _resolution_limited_data(seed, size):
    return _resolution_result(seed, size, 0, ("data D", "L(D) - fitted offset", "P = infinity"))


@claim("scaling.resolution_limited_params",
       "With $D \\to \\infty$ and teacher spectrum $\\lambda_i = i^{-2}$ the loss falls like $P^{-\\alpha}$ with the "
       "same $\\alpha = 1$ (resolution-limited), along the deterministic equivalent $P\\kappa/S$.", SOURCE,
       lambda: sc.power_law_limit()[1].xreplace({sc.alpha: 1, sc.D: sc.P}))
def _resolution_limited_params(seed, size):
    return _resolution_result(seed, size, 1, ("student features P", "L(P) - fitted offset", "D = infinity"))


@claim("scaling.duality",
       "The loss at $P = \\infty$ as a function of D and the loss at $D = \\infty$ as a function of P are one curve, "
       "the deterministic equivalent $D\\kappa/S$ of the feature spectrum.", SOURCE,
       lambda: sp.Tuple(*sc.deterministic_equivalent()))
def _duality(seed, size):
    spectrum, sizes, (by_data, se_data), (by_params, se_params), _ = _resolution(seed, size)
    theory = sc.spectral_loss(spectrum, sizes)
    estimate, se = np.concatenate([by_data, by_params]), np.concatenate([se_data, se_params])
    prediction = np.concatenate([theory, theory])
    bias = prediction / np.concatenate([sizes, sizes])  # the deterministic equivalent is exact up to O(1/D)

    def plot(fig):
        ax = fig.add_subplot()
        ax.errorbar(sizes, by_data, yerr=2 * se_data, fmt="o", capsize=3, label="L(D), P = infinity (2 SE)")
        ax.errorbar(sizes * 1.05, by_params, yerr=2 * se_params, fmt="s", capsize=3, label="L(P), D = infinity (2 SE)")
        ax.plot(sizes, theory, "k-", label="deterministic equivalent D kappa / S")
        ax.set(xscale="log", yscale="log", xlabel="D or P", ylabel="test loss", title="duality, lambda_i = i^-2")
        ax.legend()

    tail = np.array([spectrum[m:].sum() for m in sizes]) / spectrum.size  # an oracle keeping the top D features
    return compare_all(prediction, estimate, se, bias=bias, shown=2, what="sizes (D and P)",
                       rivals={"the oracle's tail sum": np.concatenate([tail, tail])},
                       data={"sizes": sizes, "by_data": by_data, "by_params": by_params, "theory": theory}, plot=plot)


# --------------------------------------------------------------------------------------------------------------
# Kernel spectra on the sphere and learning curves
# --------------------------------------------------------------------------------------------------------------

_DECAY = {"ntk": SPHERE, "nngp": SPHERE + 2}  # μ_k ∝ k^{-d} (Bietti & Mairal 2019), k^{-(d+2)} (Bach 2017)
SOURCE_SPECTRUM = ("Bietti & Mairal 2019; Bietti & Bach 2021; Bach 2017 (arc-cosine kernels); Funk-Hecke formula; "
                   + SOURCE)


def _decay_claim(kind):
    beta_ = _DECAY[kind]

    @claim(f"scaling.spectrum_decay.{kind}",
           f"The Funk-Hecke eigenvalues of the depth-2 ReLU {kind.upper()} on $S^2$ decay like $k^{{-{beta_}}}$.",
           SOURCE_SPECTRUM, _alpha_eq("beta", beta_))
    def run(seed, size):
        """Fit μ_k = C k^{-β}(1 + b/k) on [k_max/2, k_max]; the systematic error of this asymptotic fit is taken as
        its change when the range is doubled to [k_max/4, k_max] (the quadrature error, ~1e-10, is negligible)."""
        k_max = sized(size, 60, 120, 200)
        coarse = _spectrum(kind, k_max)
        fine = sc.kernel_spectrum(SPHERE, k_max, kind=kind, nodes=2 * (4 * k_max + 200), **KERNEL)
        quadrature = np.abs(fine.eigenvalue - coarse.eigenvalue) + 1e-15 * fine.eigenvalue[0]
        fits = []
        for low in (k_max // 2, k_max // 4):
            k_ = np.arange(low, k_max + 1)
            fits.append(sc.fit_power_law(k_, fine.eigenvalue[k_], quadrature[k_], offset=False, correction=True))
        systematic = abs(fits[0].exponent - fits[1].exponent)

        def plot(fig):
            ax = fig.add_subplot()
            k_ = np.arange(1, k_max + 1)
            ax.loglog(k_, fine.eigenvalue[k_] * k_ ** beta_, "o", ms=3, label=f"mu_k k^{beta_} (Funk-Hecke)")
            ax.loglog(k_, fits[0](k_) * k_ ** beta_, "-", label=f"fit on [{k_max // 2}, {k_max}]: beta = "
                      f"{fits[0].exponent:.4f}")
            ax.set(xlabel="degree k", ylabel=f"mu_k k^{beta_}", title=f"{kind.upper()}, ReLU depth 2, S^2")
            ax.legend()

        other = "nngp" if kind == "ntk" else "ntk"
        return compare(beta_, fits[0].exponent, systematic, rivals={f"the {other.upper()}'s decay": _DECAY[other]},
                       data={"spectrum": fine, "fits": fits}, plot=plot)

    return run


def _learning_curve_claim(kind):
    alpha_ = sc.implied_exponent().xreplace({sc.beta: _DECAY[kind], sc.d: SPHERE})

    @claim(f"scaling.learning_curve.{kind}",
           f"Kernel regression with the depth-2 ReLU {kind.upper()} on $S^2$ (teacher drawn from its own Gaussian "
           f"process) has a learning curve $D^{{-\\alpha}}$ with $\\alpha = {sp.latex(alpha_)}$ implied by its "
           "spectrum.", SOURCE_SPECTRUM, sp.Eq(sc.alpha, alpha_))
    def run(seed, size):
        """The expected test loss of one data set, averaged exactly over the teacher (the GP posterior variance) and
        over the test input: E_x[κ(1) - k_xᵀK⁻¹k_x] = κ(1) - tr(K⁻¹K₂), K₂ the Gram matrix of the composed kernel
        (:func:`_composed`). D = 16 .. 512 in steps of √2; the 1/D correction is fitted."""
        sizes = np.unique(np.round(16 * 2 ** (np.arange(sized(size, 7, 11, 13)) / 2)).astype(int))
        reps = sized(size, 8, 48, 96)
        kernels = _composed(kind, sized(size, 60, 120, 200))  # κ and K₂ of the angle (the spectrum decay's degrees)
        rng = _rng(seed, f"scaling.learning_curve.{kind}")
        loss = np.empty((sizes.size, reps))
        for j, m in enumerate(sizes):
            for r in range(reps):  # independent data sets for every D and repetition
                x = rng.standard_normal((m, SPHERE))
                x /= np.linalg.norm(x, axis=1, keepdims=True)
                angle = np.arccos(np.clip(x @ x.T, -1, 1))
                np.fill_diagonal(angle, 0.0)
                gram, composed = np.moveaxis(_uniform_spline(kernels, angle), -1, 0)
                solved = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), composed)
                loss[j, r] = kernels(0.0)[0] - np.trace(solved)
        mean, se = _ensemble(loss)
        fit = sc.fit_power_law(sizes, mean, se, offset=False, correction=True, se_dof=reps - 1)
        other = "nngp" if kind == "ntk" else "ntk"
        rival = float(sc.implied_exponent().xreplace({sc.beta: _DECAY[other], sc.d: SPHERE}))
        return _exponent_result(fit, float(alpha_), sizes, mean, se,
                                ("data D", "test loss", f"{kind.upper()} regression on S^2"),
                                {f"the {other.upper()}'s exponent": rival})

    return run


@lru_cache(maxsize=4)
def _spline(kind):
    """The kernel as a function of the angle, tabulated from theory.nngp_ntk on 2049 angles (error ~1e-12)."""
    grid = np.linspace(0, np.pi, 2049)
    return scipy.interpolate.CubicSpline(grid, sc.sphere_kernel(grid, kind=kind, **KERNEL))


@lru_cache(maxsize=4)
def _spectrum(kind, k_max):
    """The Funk-Hecke eigenvalues of the NTK/NNGP on S^2 up to degree ``k_max`` (shared by the claims)."""
    return sc.kernel_spectrum(SPHERE, k_max, kind=kind, **KERNEL)


@lru_cache(maxsize=4)
def _composed(kind, k_max):
    """[κ, K₂] as one spline in the angle on 2049 angles: κ from :func:`_spline`'s table, and K₂(a·b) =
    E_x[κ(a·x) κ(x·b)] for x uniform on S^2, by the addition theorem ∫ P_k(a·x) P_l(x·b) dσ(x) = δ_kl P_k(a·b)/N_k:
    K₂ = Σ_k N_k μ_k² P_k(a·b) = Σ_k μ_k² √N_k Y_k(a·b) (Y_k the normalized zonal harmonic). Degrees above
    ``k_max`` add Σ N_k μ_k² < μ_{k_max} Σ N_k μ_k (< 1e-6 κ(1)² for k_max >= 60)."""
    spectrum = _spectrum(kind, k_max)
    grid = np.linspace(0, np.pi, 2049)
    points = np.stack([np.cos(grid), np.sin(grid), np.zeros_like(grid)], axis=1)
    north = np.array([1.0, 0.0, 0.0])
    composed = sum(mu**2 * np.sqrt(count) * sc.zonal_harmonic(degree, SPHERE, points, north)
                   for degree, mu, count in zip(spectrum.degree, spectrum.eigenvalue, spectrum.multiplicity))
    return scipy.interpolate.CubicSpline(grid, np.stack([_spline(kind)(grid), composed], axis=1))


def _uniform_spline(spline, x):
    """``spline(x)`` for a CubicSpline on a uniform grid: the interval by division instead of a binary search (the
    search dominated the cost of the learning curves' Gram matrices)."""
    knots = spline.x
    step = (knots[-1] - knots[0]) / (knots.size - 1)
    index = np.clip(((x - knots[0]) / step).astype(int), 0, knots.size - 2)
    dx = (x - knots[index])[..., None]
    c = np.moveaxis(spline.c, 0, 1).reshape(knots.size - 1, 4, -1)[index]  # one contiguous gather
    return ((c[..., 0, :] * dx + c[..., 1, :]) * dx + c[..., 2, :]) * dx + c[..., 3, :]


for _kind in ("ntk", "nngp"):
    _decay_claim(_kind)
    _learning_curve_claim(_kind)


# --------------------------------------------------------------------------------------------------------------
# Geometry: nearest neighbours on a manifold and piecewise-linear interpolation
# --------------------------------------------------------------------------------------------------------------


def _torus(rng, count, dim):
    """``count`` uniform points on the flat torus [0, 1)^dim: (chart coordinates, Clifford embedding in R^{2 dim})."""
    u = rng.random((count, dim))
    return u, np.concatenate([np.cos(2 * np.pi * u), np.sin(2 * np.pi * u)], axis=1) / (2 * np.pi)


def _nearest_neighbour_claim(dim):
    @claim(f"scaling.nearest_neighbour.d{dim}",
           f"On a {dim}-dimensional torus embedded in $R^{{{2 * dim}}}$ the distance to the nearest of D samples "
           f"falls like $D^{{-1/{dim}}}$.", SOURCE, lambda: sc.nearest_neighbour_distance().xreplace({sc.d: dim}))
    def run(seed, size):
        sizes = np.unique(np.geomspace(256, 16384, 7).astype(int))
        reps, queries = sized(size, 8, 16, 40), 400
        rng = _rng(seed, f"scaling.nearest_neighbour.d{dim}")
        dist = np.empty((sizes.size, reps))
        for j, m in enumerate(sizes):
            for r in range(reps):
                tree = scipy.spatial.cKDTree(_torus(rng, m, dim)[1])
                dist[j, r] = np.mean(tree.query(_torus(rng, queries, dim)[1])[0])
        mean, se = _ensemble(dist)
        fit = sc.fit_power_law(sizes, mean, se, offset=False, correction=True, se_dof=reps - 1)
        return _exponent_result(fit, 1 / dim, sizes, mean, se,
                                ("samples D", "mean nearest-neighbour distance", f"torus T^{dim} in R^{2 * dim}"),
                                {f"the ambient dimension 1/{2 * dim}": 1 / (2 * dim)})

    return run


#: Hessians of the quadratic targets f(u) = ½ uᵀHu (indefinite, not diagonal: a generic curvature).
_HESSIAN = {2: np.array([[2.0, 0.6], [0.6, -1.0]]), 3: np.array([[2.0, 0.6, 0.3], [0.6, -1.0, 0.4], [0.3, 0.4, 1.5]])}


def _interpolation_mse(points, hessian, margin):
    """The mean squared error of the Delaunay piecewise-linear interpolant of f(u) = ½ uᵀHu over the simplices whose
    centroid lies in [margin, 1 - margin]^d, integrated exactly.

    On a simplex with vertices v_0..v_d and barycentric coordinates λ, the interpolant reproduces affine functions,
    so its error is exactly e = f - ℓ = -½ Σ_{i<j} λ_i λ_j a_ij, a_ij = (v_i - v_j)ᵀH(v_i - v_j). Under the uniform
    measure on the simplex λ ~ Dirichlet(1, ..., 1), E[Π λ_i^{k_i}] = d! Π k_i! / (d + Σ k_i)!, so the mean of e² is
    the quadratic form ¼ aᵀMa with M_pq = d! m_pq/(d + 4)!, m = 4 (the same pair), 2 (pairs sharing a vertex),
    1 (disjoint pairs). The MSE is Σ vol_f E_f[e²] / Σ vol_f over the chosen simplices: by stationarity its mean is
    that of the MSE at uniform test points of the region (no test-point noise).
    """
    dim = points.shape[1]
    vertices = points[scipy.spatial.Delaunay(points).simplices]
    centroid = vertices.mean(axis=1)
    vertices = vertices[np.all((centroid >= margin) & (centroid <= 1 - margin), axis=1)]
    pairs = np.array([(i, j) for i in range(dim + 1) for j in range(i + 1, dim + 1)])
    edges = vertices[:, pairs[:, 0]] - vertices[:, pairs[:, 1]]
    a = np.einsum("npk,kl,npl->np", edges, hessian, edges)
    shared = (pairs[:, None, :, None] == pairs[None, :, None, :]).sum(axis=(2, 3))  # 2: same pair, 1, 0
    moment = np.choose(shared, [1, 2, 4]) * math.factorial(dim) / math.factorial(dim + 4)
    volume = np.abs(np.linalg.det(vertices[:, 1:] - vertices[:, :1])) / math.factorial(dim)
    return float(np.sum(volume * np.einsum("np,pq,nq->n", a, moment, a)) / 4 / np.sum(volume))


def _interpolation_claim(dim):
    @claim(f"scaling.interpolation.d{dim}",
           f"A piecewise-linear interpolant of a smooth function of {dim} variables from D samples has a test MSE "
           f"falling like $D^{{-4/{dim}}}$ (its error is the Hessian term, $O(h^2)$ with $h \\propto D^{{-1/{dim}}}$; "
           "tested on a quadratic, whose error is that term alone).", SOURCE,
           lambda: sp.Eq(sc.alpha, sc.interpolation_exponent().xreplace({sc.d: dim})))
    def run(seed, size):
        """D uniform samples of the unit cube, Delaunay-linear interpolation of a quadratic, the MSE over the
        simplices whose centroid lies in [m, 1 - m]^d, m = min(1/4, 2h), h = D^{-1/d}, integrated exactly
        (:func:`_interpolation_mse`; a region growing towards the cube keeps the simplices sampled ∝ D, and the
        boundary's distortion of the simplices is below the statistical error from 1-2 h inwards).

        A quadratic has no third-order term, whose relative size h would bend the log-log line: the pure power law
        C₀ D^{-a} is fitted, no correction; the remaining finite-D effect (D points rather than a Poisson process of
        intensity D) is O(1/D), below 0.4 % from D = 256 on."""
        if dim == 2:
            sizes = (256 * 2 ** np.arange(sized(size, 4, 6, 7))).astype(int)  # 256 .. 8192
        else:
            sizes = (512 * 2 ** np.arange(sized(size, 3, 4, 5))).astype(int)  # 512 .. 4096
        reps = sized(size, 8, 24 if dim == 2 else 40, 96)
        rng = _rng(seed, f"scaling.interpolation.d{dim}")
        mse = np.empty((sizes.size, reps))
        for j, m in enumerate(sizes):
            for r in range(reps):
                mse[j, r] = _interpolation_mse(rng.random((m, dim)), _HESSIAN[dim], min(0.25, 2 * m ** (-1 / dim)))
        mean, se = _ensemble(mse)
        fit = sc.fit_power_law(sizes, mean, se, offset=False, correction=False, se_dof=reps - 1)
        return _exponent_result(fit, 4 / dim, sizes, mean, se, ("samples D", "test MSE", f"linear interpolation, d = {dim}"),
                                {f"a first-order (gradient) error 2/{dim}": 2 / dim})

    return run


for _dim in (2, 3):
    _nearest_neighbour_claim(_dim)
    _interpolation_claim(_dim)
