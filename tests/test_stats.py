"""theory.stats against scipy reference computations on synthetic data with known truth."""

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from theory import stats


def test_mean_se_is_scipys_mean_and_sem():
    samples = np.random.default_rng(0).standard_normal((50, 3)) * [1, 2, 3]
    mean, se = stats.mean_se(samples)
    np.testing.assert_allclose(mean, samples.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(se, scipy.stats.sem(samples, axis=0), rtol=1e-13)
    with pytest.raises(ValueError, match="samples"):
        stats.mean_se(samples[:1])


def test_wls_coefficients_and_covariance_are_curve_fits_with_absolute_sigma():
    rng = np.random.default_rng(1)
    x = np.linspace(0.5, 4, 9)
    se = 0.05 + 0.1 * rng.random(9)
    y = 1.5 - 0.7 * x + 0.2 * x**2 + se * rng.standard_normal(9)
    design = np.stack([np.ones_like(x), x, x**2], axis=1)
    fit = stats.wls(design, y, se)
    coef, cov = scipy.optimize.curve_fit(lambda x, a, b, c: a + b * x + c * x**2, x, y, sigma=se, absolute_sigma=True)
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-8)
    np.testing.assert_allclose(fit.cov, cov, rtol=1e-6)
    assert fit.dof == 6 and fit.chi2 == pytest.approx(np.sum(((y - design @ coef) / se) ** 2), rel=1e-8)
    batched = stats.wls(design, np.stack([y, 2 * y]), se)  # leading axes: independent fits
    np.testing.assert_allclose(batched.coef[1], 2 * fit.coef, rtol=1e-12)
    with pytest.raises(ValueError, match="linearly dependent"):
        stats.wls(np.stack([x, 2 * x], axis=1), y, se)
    with pytest.raises(ValueError, match="y_se"):
        stats.wls(design, y, np.zeros(9))


def test_log_slope_is_the_weighted_fit_of_log_y():
    rng = np.random.default_rng(2)
    x = np.geomspace(16, 1024, 7)
    y = 3 * x**-0.5 * (1 + 0.01 * rng.standard_normal(7))
    fit = stats.log_slope(x, y, 0.01 * y)
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1, w=np.full(7, 100.0))
    assert fit.slope == pytest.approx(slope, rel=1e-10) and fit.coef[0] == pytest.approx(intercept, rel=1e-10)
    _, cov = np.polyfit(np.log(x), np.log(y), 1, w=np.full(7, 100.0), cov="unscaled")
    assert fit.stderr == pytest.approx(np.sqrt(cov[0, 0]) * np.sqrt(max(1, fit.chi2_dof)), rel=1e-8)
    with pytest.raises(ValueError, match="positive"):
        stats.log_slope(x, -y, y)
    for bad in (-1, 1.5, "1/x"):
        with pytest.raises(ValueError, match="correction"):
            stats.log_slope(x, y, y, correction=bad)


@pytest.mark.parametrize("correction", [False, True, 2])
def test_log_slope_interval_covers_the_true_exponent_at_its_level(correction):
    """Over 40 000 synthetic data sets with known truth, the 99% interval covers the true slope 99% ± 1% of the
    time (binomial SE 0.05%): normal where the stated errors set the width, Student t where the scatter does."""
    rng = np.random.default_rng(3)
    x = np.geomspace(32, 2048, 6)
    truth = 2 * x**-0.75 * (1 + (3 / x if correction else 0)) * np.exp(40 / x**2 if correction == 2 else 0)
    rel = 0.02  # 2% relative errors, known
    y = truth * np.exp(rel * rng.standard_normal((40_000, x.size)))
    fit = stats.log_slope(x, y, rel * y, correction=correction)
    lo, hi = fit.interval(0.01)
    coverage = np.mean((lo <= -0.75) & (-0.75 <= hi))
    assert abs(coverage - 0.99) <= 0.01, coverage


@pytest.mark.slow
def test_fit_power_law_99_interval_covers_the_true_exponent():
    """The profile-likelihood 99% interval of C0 x^-a + C_inf: coverage within 99% ± 1% over 1000 data sets
    (binomial SE 0.3%)."""
    rng = np.random.default_rng(4)
    x = np.geomspace(8, 512, 7)
    truth = 2.0 * x**-0.7 + 0.05
    se = 0.02 * truth
    hits = 0
    for _ in range(1000):
        lo, hi = stats.fit_power_law(x, truth + se * rng.standard_normal(x.size), se, level=0.99).interval
        hits += lo <= 0.7 <= hi
    assert abs(hits / 1000 - 0.99) <= 0.01


def test_bonferroni_keeps_the_family_wise_level():
    """N claims of m tests each, all predictions right: the chance that some test exceeds the Bonferroni threshold
    is at most alpha (here alpha = 0.05 so that 20 000 simulated runs measure it: 0.05 - 4.5% .. 0.05)."""
    alpha, claims, tests = 0.05, 20, 5
    z = stats.threshold(stats.bonferroni(stats.bonferroni(alpha, claims), tests))
    assert z == pytest.approx(scipy.stats.norm.ppf(1 - alpha / (2 * claims * tests)), rel=1e-12)
    scores = np.random.default_rng(5).standard_normal((20_000, claims * tests))
    false_failure = np.mean(np.any(np.abs(scores) > z, axis=1))
    assert 0.045 <= false_failure <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / 20_000)
    assert stats.threshold(0.01, dof=4) == pytest.approx(scipy.stats.t.ppf(0.995, 4), rel=1e-12)
    for bad in (0, 1, -0.1):
        with pytest.raises(ValueError, match="alpha"):
            stats.threshold(bad)


def test_verdicts_combine_holds_iff_all_hold():
    assert stats.verdict(True, True) == "holds" and stats.verdict(True, False) == "inconclusive"
    assert stats.verdict(False, True) == stats.verdict(False, False) == "fails"
    assert stats.combine(["holds", "holds"]) == "holds"
    assert stats.combine(["holds", "inconclusive"]) == "inconclusive"
    assert stats.combine(["inconclusive", "fails", "holds"]) == "fails"
    with pytest.raises(ValueError, match="verdicts"):
        stats.combine(["maybe"])


def test_log_slope_without_stated_errors_is_scipys_linregress():
    rng = np.random.default_rng(6)
    x = np.repeat([128.0, 256, 512, 1024], 6)
    y = 0.5 * x**-0.5 * np.exp(0.1 * rng.standard_normal(x.size))
    fit = stats.log_slope(x, y)
    reference = scipy.stats.linregress(np.log(x), np.log(y))
    assert fit.slope == pytest.approx(reference.slope, rel=1e-10)
    assert fit.stderr == pytest.approx(reference.stderr, rel=1e-8)
    assert fit.quantile(0.01) == pytest.approx(scipy.stats.t.ppf(0.995, x.size - 2), rel=1e-12)


def test_inverse_coefficient_recovers_c_of_c_over_x():
    x = np.array([4.0, 8, 16, 32, 64, 128])
    y = 15 / x + 40 / x**2 - 30 / x**3
    c, c_se = stats.inverse_coefficient(x, y, 1e-6 * y)
    assert c == pytest.approx(15, rel=1e-8) and 0 < c_se < 1e-3


def test_a_control_variate_of_known_mean_keeps_the_mean_and_shrinks_its_error():
    """y = 2 + c + noise with E c = 0 known: the controlled mean is unbiased (z-score over 400 repetitions) and its
    standard error is the noise's, not that of y; y = 2 + c exactly gives 2 + E c, whatever the sample of c."""
    rng = np.random.default_rng(3)
    estimates, errors = [], []
    for _ in range(400):
        c = rng.standard_normal(50)
        y = 2 + c + 0.3 * rng.standard_normal(50)
        m, se = stats.controlled_mean(y, c, 0.0)
        estimates.append(m)
        errors.append(se)
    estimates, errors = np.array(estimates), np.array(errors)
    assert abs(estimates.mean() - 2) < 5 * estimates.std() / np.sqrt(len(estimates))
    assert 0.8 < estimates.std() / errors.mean() < 1.2 and errors.mean() < 0.06
    c = rng.standard_normal(50)
    y = 2 + c
    assert abs(stats.controlled_mean(y, c, 1.0)[0] - 3.0) < 1e-9
