r"""Statistics for the claims: mean ± SE (also with a control variate of known mean), weighted least squares, power-law
fits, the family-wise significance level and the three-valued verdict. Every claim of :mod:`theory.claims` and
:func:`theory.scaling.fit_power_law` use it.

**Significance.** One run of ``theory verify`` tests every registered claim at a family-wise level
:data:`ALPHA` = 10⁻³ (Bonferroni): a claim with m tests (entries of an array, parts of a combined criterion)
tests each at α/(N m), N the number of registered claims, i.e. with the two-sided normal quantile
z = Φ⁻¹(1 - α/(2Nm)) (:func:`threshold`). If every prediction is right, the chance that some claim of the run
fails is at most α (plus whatever the stated bias bounds miss). Bonferroni rather than Holm: a claim's verdict does
not depend on the others' p-values, so one claim run alone gets the verdict it gets in the full run.

**Verdicts.** ``holds`` (the prediction is consistent with the data and every rival is excluded), ``fails`` (the
prediction is excluded), ``inconclusive`` (neither: the data cannot tell the prediction from a rival).
"""

from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.stats

from . import _validate

__all__ = ["ALPHA", "VERDICTS", "mean_se", "controlled_mean", "wls", "WLS", "log_slope", "LogSlope",
           "inverse_coefficient", "fit_power_law", "PowerLawFit",
           "bonferroni", "threshold", "verdict", "combine"]

#: The family-wise significance level of one ``theory verify`` run (all registered claims together).
ALPHA = 1e-3

#: The three verdicts, from best to worst.
VERDICTS = ("holds", "inconclusive", "fails")


def mean_se(samples, axis=0):
    """The mean over ``axis`` and its standard error s/√r (s with r - 1 degrees of freedom); needs r >= 2 samples."""
    samples = np.asarray(samples, dtype=np.float64)
    r = samples.shape[axis]
    if r < 2:
        raise ValueError(f"samples: need at least 2 along axis {axis} for a standard error, got {r}")
    return samples.mean(axis=axis), samples.std(axis=axis, ddof=1) / np.sqrt(r)


def controlled_mean(values, control, mean):
    """The mean of ``values`` (E,) with the control variate ``control`` (E,), whose expectation ``mean`` is known
    exactly: ȳ - β(c̄ - E c), β the least-squares coefficient of y on c, and its standard error from the residuals
    (the estimator is unbiased up to O(1/E), from the fitted β)."""
    c = control - control.mean()
    beta = np.dot(c, values - values.mean()) / np.dot(c, c)
    residual = values - beta * c
    return values.mean() - beta * (control.mean() - mean), residual.std(ddof=2) / np.sqrt(len(values))


class WLS(NamedTuple):
    """A weighted least-squares fit: coefficients, their covariance (X'WX)⁻¹ (from the stated errors, not rescaled),
    χ² = Σ w (y - X β)² and the residual degrees of freedom. Batched fits have leading axes on coef, cov, chi2."""

    coef: np.ndarray
    cov: np.ndarray
    chi2: np.ndarray
    dof: int

    def stderr(self, scale=True):
        """Standard errors of the coefficients; ``scale`` multiplies them by √max(1, χ²/dof) (points that scatter
        more than their errors say)."""
        se = np.sqrt(np.diagonal(self.cov, axis1=-2, axis2=-1))
        if scale and self.dof > 0:
            se = se * np.sqrt(np.maximum(1.0, self.chi2 / self.dof))[..., None]
        return se


def wls(design, y, y_se):
    """Weighted least squares y ≈ X β with weights w = 1/SE²: β = (X'WX)⁻¹X'Wy, Cov β = (X'WX)⁻¹ (:class:`WLS`).

    ``design`` is (m, p); ``y`` and ``y_se`` are (..., m): leading axes are independent data sets fitted at once.
    """
    design = np.asarray(design, dtype=np.float64)
    design = design[:, None] if design.ndim == 1 else design
    y, y_se = np.broadcast_arrays(np.asarray(y, dtype=np.float64), np.asarray(y_se, dtype=np.float64))
    if design.ndim != 2 or y.shape[-1:] != design.shape[:1]:
        raise ValueError(f"design, y, y_se: expected shapes (m, p) and (..., m), got {design.shape} and {y.shape}")
    if not (np.all(y_se > 0) and np.all(np.isfinite(y_se)) and np.all(np.isfinite(y))):
        raise ValueError("y, y_se: expected finite values and finite positive standard errors")
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError("design: the columns are linearly dependent (the coefficients are not identified)")
    w = 1 / y_se**2
    cov = np.linalg.inv(np.einsum("mp,...m,mq->...pq", design, w, design))
    coef = np.einsum("...pq,mq,...m->...p", cov, design, w * y)
    chi2 = np.sum(w * (y - coef @ design.T) ** 2, axis=-1)
    return WLS(coef, cov, chi2, int(design.shape[0] - design.shape[1]))


class LogSlope(NamedTuple):
    """The slope s of log y = a + s log x (+ b₁/x + …): estimate, standard error (scaled up by √(χ²/dof) when the
    points scatter more than their errors say), the residual degrees of freedom, χ²/dof and the coefficients
    (arrays for batched fits); ``scatter``: the errors were estimated from the residuals alone (no stated errors)."""

    slope: np.ndarray
    stderr: np.ndarray
    dof: int
    chi2_dof: np.ndarray
    coef: np.ndarray
    scatter: bool = False

    def quantile(self, alpha):
        """The two-sided quantile for a test at level ``alpha``: normal with stated errors (the PDG scale factor
        √max(1, χ²/dof) already widens the error of a misfit), Student's t with the residual degrees of freedom when
        the errors come from the residuals alone (``scatter``)."""
        return threshold(alpha, self.dof) if self.scatter else threshold(alpha)

    def interval(self, alpha):
        """The two-sided interval slope ± q SE at level ``alpha``."""
        half = self.quantile(alpha) * self.stderr
        return self.slope - half, self.slope + half


def log_slope(x, y, y_se=None, correction=False):
    """Fit log y = a + s log x (+ b/x with ``correction``, the leading finite-x term of a law that holds as x -> ∞;
    + b₁/x + … + b_k/x^k with ``correction=k``) by weighted least squares with SE(log y) = SE(y)/y
    (:class:`LogSlope`); ``y``, ``y_se`` may have leading axes of independent data sets.

    With the errors known the slope's error is the WLS one and its quantile normal; when the points scatter more
    than their errors say (χ²/dof > 1, a misfit) the error is scaled by √(χ²/dof), the PDG scale factor (the stated
    errors carry the scale, so the quantile stays normal: Student's t on 3 residual degrees of freedom would be ten
    times wider at the 10⁻⁵ level of one test in a run). ``y_se=None`` (e.g. one point per network): ordinary least squares, the
    error from the residuals and Student's t.
    """
    x = np.asarray(x, dtype=np.float64)
    scatter = y_se is None
    y = np.asarray(y, dtype=np.float64)
    y, y_se = np.broadcast_arrays(y, y if scatter else np.asarray(y_se, dtype=np.float64))
    if not (x.ndim == 1 and y.shape[-1:] == x.shape):
        raise ValueError(f"x, y, y_se: expected x of shape (m,) and y, y_se of shape (..., m), got {x.shape}, "
                         f"{y.shape}")
    if not (np.all(x > 0) and np.all(y > 0)):
        raise ValueError("x, y: a log-log fit needs positive x and y")
    lx = np.log(x)
    design = np.stack([np.ones_like(lx), lx] + [x**-j for j in range(1, _terms(correction) + 1)], axis=1)
    if x.size <= design.shape[1]:
        raise ValueError(f"x: need more than {design.shape[1]} points to fit and test the model, got {x.size}")
    fit = wls(design, np.log(y), y_se / y)
    chi2_dof = fit.chi2 / fit.dof
    if scatter:  # unit weights: σ² = χ²/dof estimates the residual variance, whatever its size
        stderr = np.sqrt(fit.cov[..., 1, 1] * chi2_dof)
    else:
        stderr = fit.stderr()[..., 1]
    return LogSlope(fit.coef[..., 1], stderr, fit.dof, chi2_dof, fit.coef, scatter)


def _terms(correction):
    """The number of 1/x^j terms a ``correction`` argument asks for: False 0, True 1, or a count k >= 0."""
    if isinstance(correction, bool):
        return int(correction)
    if isinstance(correction, (int, np.integer)) and correction >= 0:
        return int(correction)
    raise ValueError(f"correction: expected True/False or a number of 1/x terms >= 0, got {correction!r}")


def inverse_coefficient(x, y, y_se, corrections=2):
    """The c of y = c/x + O(1/x²) and its standard error: weighted least squares of x·y = c + b₁/x + … + b_k/x^k
    (k = ``corrections``), the error scaled by √max(1, χ²/dof)."""
    x, y, y_se = (np.asarray(a, dtype=np.float64) for a in (x, y, y_se))
    design = np.stack([x**-j for j in range(corrections + 1)], axis=1)
    if x.size <= design.shape[1]:
        raise ValueError(f"x: need more than {design.shape[1]} points for {corrections} corrections, got {x.size}")
    fit = wls(design, x * y, x * y_se)
    return float(fit.coef[0]), float(fit.stderr()[0])


def bonferroni(alpha, tests):
    """The level of each of ``tests`` tests that keeps the family-wise level at ``alpha``: alpha/tests."""
    tests = _validate.count(tests, "tests", 1)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    return alpha / tests


def threshold(alpha, dof=None):
    """The two-sided quantile of a test at level ``alpha``: Φ⁻¹(1 - α/2), or Student's t with ``dof`` degrees of
    freedom."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    if dof is None:
        return float(scipy.stats.norm.isf(alpha / 2))
    return float(scipy.stats.t.isf(alpha / 2, _validate.count(dof, "dof", 1)))


def verdict(consistent, rivals_excluded=True):
    """``fails`` if the prediction is excluded, else ``holds`` if every rival is excluded, else ``inconclusive``."""
    if not consistent:
        return "fails"
    return "holds" if rivals_excluded else "inconclusive"


def combine(verdicts):
    """One verdict from several criteria: ``holds`` iff all hold, ``fails`` if any fails, else ``inconclusive``."""
    verdicts = list(verdicts)
    for v in verdicts:
        if v not in VERDICTS:
            raise ValueError(f"verdicts: expected {', '.join(VERDICTS)}, got {v!r}")
    return max(verdicts, key=VERDICTS.index) if verdicts else "holds"


class PowerLawFit(NamedTuple):
    """y = C₀ u^{-α} + C₁ u^{-α-1} + C_∞ with u = x/x₀, x₀ the geometric mean of x; ``interval`` at ``level``.

    ``correction`` (C₁) and ``offset`` (C_∞) are 0 when not fitted. ``inputs`` (x, y, y_se, offset, correction,
    se_dof) let :meth:`ratio` test any exponent against the same data.
    """

    exponent: float
    stderr: float
    interval: tuple
    amplitude: float
    correction: float
    offset: float
    x0: float
    chi2: float
    dof: int
    level: float
    inputs: tuple = None

    def __call__(self, x):
        u = np.asarray(x, dtype=np.float64) / self.x0
        return self.amplitude * u ** -self.exponent + self.correction * u ** (-self.exponent - 1) + self.offset

    def quantile(self, alpha):
        """The two-sided quantile of the profile test at level ``alpha`` (normal, or Student t with se_dof)."""
        return threshold(alpha, self.inputs[5])

    def ratio(self, exponent, alpha):
        """The profile-likelihood test of ``exponent``: √((χ²(a) - χ²_min)/s) / q at level ``alpha`` (s as in the
        interval); <= 1 iff ``exponent`` lies in the interval at that level, > 1: excluded (inf: inadmissible)."""
        x, y, y_se, offset, correction, _ = self.inputs
        chi2 = _profile(np.log(x / self.x0), y, 1 / y_se**2, offset, correction)[1](exponent)[0]
        return float(np.sqrt(max(chi2 - self.chi2, 0.0) / max(1.0, self.chi2 / self.dof)) / self.quantile(alpha))


def _profile(lx, y, w, offset, correction):
    """χ²(a) minimized over the linear coefficients (variable projection), and those coefficients, for an array of a.

    With a correction term, a pure law x^{-a-1} could also be fitted as "a correction to x^{-a}"; such fits, whose
    correction exceeds the leading term somewhere in the data (|C₁| u > |C₀| at u = min x/x₀), are inadmissible
    (χ² = ∞).
    """
    u_min, root = np.exp(lx.min()), np.sqrt(w)

    def solve(a):
        a = np.atleast_1d(np.asarray(a, dtype=np.float64))[:, None]
        cols = ([np.exp(-a * lx)] + ([np.exp(-(a + 1) * lx)] if correction else [])
                + ([np.broadcast_to(np.ones_like(lx), (a.size, lx.size))] if offset else []))
        design = np.stack(cols, axis=-1) * root[:, None]                     # (grid, points, columns)
        coef = np.einsum("gip,p->gi", np.linalg.pinv(design), y * root)      # min-norm if degenerate (a = 0)
        chi2 = np.sum((np.einsum("gpi,gi->gp", design, coef) - y * root) ** 2, axis=1)
        if correction:
            chi2 = np.where(np.abs(coef[:, 1]) > np.abs(coef[:, 0]) * u_min, np.inf, chi2)
        return chi2, coef

    def scalar(a):
        chi2, coef = solve(a)
        return float(chi2[0]), coef[0]

    return solve, scalar


def fit_power_law(x, y, y_se, offset=True, correction=False, level=0.99, bounds=(0.0, 8.0), se_dof=None):
    """Fit y = C₀ x^{-α} + C_∞ (or C₀ x^{-α} with ``offset=False``) by weighted least squares; a robust fitter.

    ``correction=True`` adds the leading finite-size term, y = C₀ x^{-α} (1 + b/x) + C_∞, for laws that hold as
    x -> ∞ (b is fitted, in units of x₀).
    For each α the model is linear in (C₀, C_∞), so χ²(α) is profiled exactly and minimized over ``bounds`` by a
    grid search refined with Brent's method (no starting guess, no local minima missed). The ``level`` interval is
    the profile-likelihood set χ²(α) <= χ²_min + q s, q the χ²₁ quantile, s = max(1, χ²_min/dof) (errors scaled up
    when the points scatter more than their standard errors say); an end that does not close stops at the bound.
    When the standard errors are themselves estimated from r repetitions, pass ``se_dof`` = r - 1: q becomes the
    squared Student-t quantile with that many degrees of freedom.
    """
    x, y, y_se = (np.asarray(v, dtype=np.float64) for v in (x, y, y_se))
    if not (x.ndim == 1 and x.shape == y.shape == y_se.shape):
        raise ValueError("x, y, y_se: expected 1-D arrays of the same length")
    params = 2 + offset + correction
    if x.size <= params:
        raise ValueError(f"x: need more than {params} points to fit and test the model, got {x.size}")
    if np.any(x <= 0) or np.any(y_se <= 0) or not np.all(np.isfinite(np.stack([x, y, y_se]))):
        raise ValueError("x, y_se: expected finite positive x and standard errors (and finite y)")
    x0 = float(np.exp(np.mean(np.log(x))))
    profile, chi2 = _profile(np.log(x / x0), y, 1 / y_se**2, offset, correction)
    grid = np.linspace(*bounds, 801)
    values = profile(grid)[0]
    j = int(np.argmin(values))
    if not np.isfinite(values[j]):
        raise ValueError("y: no admissible power law in the exponent bounds (the correction dominates everywhere)")
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
    best = scipy.optimize.minimize_scalar(lambda a: chi2(a)[0], bounds=(lo, hi), method="bounded",
                                          options={"xatol": 1e-10})
    a_hat = float(best.x) if best.fun <= values[j] else float(grid[j])
    c_min, coef = chi2(a_hat)
    dof = x.size - params
    z = (scipy.stats.norm.ppf(0.5 + level / 2) if se_dof is None
         else scipy.stats.t.ppf(0.5 + level / 2, _validate.count(se_dof, "se_dof", 1)))
    threshold = c_min + z**2 * max(1.0, c_min / dof)

    def end(side):
        outward = grid < a_hat if side < 0 else grid > a_hat
        for g, v in zip(grid[outward][::side], values[outward][::side]):
            if v > threshold:
                if not np.isfinite(v):  # the admissible region ends first: stop at the grid point (conservative)
                    return g
                return scipy.optimize.brentq(lambda a: chi2(a)[0] - threshold, *sorted((g, a_hat)))
        return bounds[0] if side < 0 else bounds[1]

    interval = (float(end(-1)), float(end(+1)))
    return PowerLawFit(a_hat, (interval[1] - interval[0]) / (2 * z), interval, float(coef[0]),
                       float(coef[1]) if correction else 0.0, float(coef[-1]) if offset else 0.0, x0, c_min, dof, level,
                       (x, y, y_se, offset, correction, se_dof))
