"""The claims registry and its criteria: verdicts that can fail, determinism, registration."""

import cloudpickle
import numpy as np
import pytest
import sympy as sp

from theory import claims, stats
from theory.claims import base
from theory.cli import main


def z_claim(tests=1):
    """The z threshold of one of ``tests`` tests of a claim: family-wise ALPHA, Bonferroni over claims and tests."""
    return stats.threshold(stats.ALPHA / len(claims.registry()) / tests)


@pytest.fixture
def wrong_claim():
    """A claim whose prediction is 10% off a quantity measured precisely: it must be reported as failing."""
    @claims.claim("test.wrong_by_ten_percent", "E[u^2] = 1.1 for u ~ N(0, 1) (deliberately wrong).", "this test",
                  sp.Rational(11, 10))
    def _run(seed, size):
        u = np.random.default_rng(claims.seed_for(seed, "test")).standard_normal(100_000)
        return claims.compare(1.1, float(np.mean(u**2)), float(np.std(u**2) / np.sqrt(u.size)))

    yield "test.wrong_by_ten_percent"
    base._REGISTRY.pop("test.wrong_by_ten_percent")


def test_a_wrong_claim_fails_and_verify_exits_nonzero(wrong_claim, capsys):
    (c, result, _), = claims.verify([wrong_claim], size="quick")
    assert result.verdict == "fails" and not result.passed and "SE + bias" in result.criterion
    assert main(["verify", wrong_claim, "--no-progress"]) == 1
    assert "FAILS" in capsys.readouterr().out


def test_an_experiment_that_raises_is_a_failed_claim(capsys):
    @claims.claim("test.crashes", "An experiment that raises.", "this test", sp.S.One)
    def _run(seed, size):
        raise RuntimeError("boom")

    try:
        (c, result, _), = claims.verify(["test.crashes"])
        assert not result.passed and "RuntimeError: boom" in result.criterion
    finally:
        base._REGISTRY.pop("test.crashes")


def test_compare_states_its_tolerance_at_the_family_wise_level():
    z = z_claim()
    assert 4 < z < 6  # alpha = 1e-3 over ~100 claims
    assert claims.compare(1.0, 1.0 + 0.99 * z * 0.01, 0.01).verdict == "holds"
    assert claims.compare(1.0, 1.0 + 1.01 * z * 0.01, 0.01).verdict == "fails"
    assert claims.compare(1.0, 1.0 + 1.01 * z * 0.01, 0.01, bias=0.001).passed
    assert f"{z:.2f} SE + bias" in claims.compare(1.0, 1.0, 0.1).criterion


def test_a_rival_that_the_data_cannot_exclude_makes_the_verdict_inconclusive():
    near = claims.compare(1.0, 1.0, 0.02, rivals={"5% more": 1.05})
    assert near.verdict == "inconclusive" and not near.passed and "5% more NOT excluded" in near.criterion
    far = claims.compare(1.0, 1.0, 0.001, rivals={"5% more": 1.05})
    assert far.verdict == "holds" and "5% more excluded" in far.criterion
    assert claims.compare(1.05, 1.0, 0.001, rivals={"the truth": 1.0}).verdict == "fails"


def test_compare_all_checks_every_entry_with_bonferroni_over_them():
    prediction, se = np.ones((3, 3)), np.full((3, 3), 0.01)
    estimate = prediction.copy()
    assert claims.compare_all(prediction, estimate, se).passed
    z = z_claim(tests=9)
    estimate[2, 1] += 1.01 * z * 0.01
    result = claims.compare_all(prediction, estimate, se, shown=(0, 0))
    assert not result.passed and result.estimate == 1.0  # the headline entry is not the failing one
    estimate[2, 1] = 1 + 0.99 * z * 0.01
    assert claims.compare_all(prediction, estimate, se).passed  # at z of 9 tests; one test's z would fail it
    rival = prediction.copy()
    rival[0, 0] = 1.2  # a rival is excluded when one entry excludes it
    assert claims.compare_all(prediction, prediction, se, rivals={"one entry off": rival}).verdict == "holds"
    assert claims.compare_all(prediction, prediction, se, rivals={"close": prediction * 1.01}).verdict == "inconclusive"


def test_power_law_interval_covers_the_true_exponent_and_excludes_rivals():
    x = np.array([64, 128, 256, 512, 1024.0])
    rng = np.random.default_rng(0)
    y = 3 * x**-0.5 * (1 + 0.01 * rng.standard_normal(5))
    y_se = 0.01 * y
    assert claims.power_law(x, y, y_se, -0.5).passed
    assert claims.power_law(x, y, y_se, -0.5, rivals={"n^-1": -1.0}).verdict == "holds"
    assert claims.power_law(x, y, y_se, -0.5, rivals={"close": -0.505}).verdict == "inconclusive"
    assert claims.power_law(x, y, y_se, -0.45).verdict == "fails"
    lo, hi = claims.power_law(x, y, y_se, -0.5).interval
    assert lo < -0.5 < hi
    corrected = 3 * x**-1.0 * np.exp(5 / x)  # a 1/x correction biases a pure power law, not the corrected fit
    assert claims.power_law(x, corrected, 0.002 * corrected, -1.0).estimate < -1.02
    fit = claims.power_law(x, corrected, 0.002 * corrected, -1.0, correction=True)
    assert fit.passed and abs(fit.estimate + 1) < 1e-9


def test_profile_law_is_the_likelihood_ratio_test_of_its_interval():
    x = np.geomspace(8, 512, 7)
    y = 2.0 * x**-0.7 + 0.05
    se = 0.002 * y
    noisy = y + se * np.random.default_rng(1).standard_normal(x.size)
    fit = stats.fit_power_law(x, noisy, se)
    result = claims.profile_law(fit, 0.7, rivals={"0.5": 0.5})
    lo, hi = result.interval
    alpha = stats.ALPHA / len(claims.registry())
    assert (lo, hi) == stats.fit_power_law(x, noisy, se, level=1 - alpha).interval and lo < 0.7 < hi
    assert fit.ratio(lo, alpha) == pytest.approx(1, abs=1e-6) and fit.ratio(hi, alpha) == pytest.approx(1, abs=1e-6)
    assert result.verdict == "holds" and claims.profile_law(fit, 0.6).verdict == "fails"
    assert all(p.rejected for p in result.perturb(0.1))


def test_combine_holds_iff_all_hold_fails_if_any_fails():
    good, bad = claims.compare(1.0, 1.0, 0.01), claims.compare(1.0, 2.0, 0.01)
    unsure = claims.compare(1.0, 1.0, 0.01, rivals={"1%": 1.01})
    assert claims.combine(good, good).verdict == "holds"
    assert claims.combine(good, unsure).verdict == "inconclusive"
    assert claims.combine(unsure, bad, headline=0).verdict == "fails"
    both = claims.combine(good, claims.condition(False, "monotone"))
    assert both.verdict == "fails" and "monotone: NO" in both.criterion
    z2 = z_claim(tests=2)  # two criteria share the claim's level: each is tested at half of it, a larger z
    edge = claims.compare(1.0, 1.0 + 0.5 * (z_claim() + z2) * 0.01, 0.01)
    assert not edge.passed and claims.combine(edge, good).passed


def test_perturbation_rescores_the_recorded_criteria():
    precise = claims.compare(2.0, 2.001, 0.01)
    rows = precise.perturb(0.1)
    assert [r.change for r in rows] == ["x0.9", "x1.1"] and all(r.rejected for r in rows)
    assert rows[0].ratio == pytest.approx(abs(2.001 - 1.8) / (z_claim() * 0.01))
    assert not all(r.rejected for r in claims.compare(2.0, 2.0, 0.1).perturb(0.1))  # too noisy to tell 10 %
    x = np.array([64, 128, 256, 512, 1024.0])
    slope = claims.power_law(x, x**0.0, 0.001 * x**0.0, 0.0)  # an exponent 0 is shifted by +-0.1
    assert [r.change for r in slope.perturb(0.1)] == ["-0.1", "+0.1"] and all(r.rejected for r in slope.perturb(0.1))
    blunt = claims.compare(1.0, 1.0, 1.0)
    combined = claims.combine(blunt, precise, claims.condition(True, "ordered"))  # all predictions perturbed at once
    rows = combined.perturb(0.1)
    assert [r.change for r in rows] == ["x0.9", "x1.1"] and all(r.rejected for r in rows)
    assert rows[0].ratio == pytest.approx(abs(2.001 - 1.8) / (z_claim(tests=2) * 0.01))  # the part that rejects
    assert not any(r.rejected for r in claims.combine(blunt, claims.condition(True, "ordered")).perturb(0.1))


def test_a_joint_rival_is_excluded_when_some_criterion_excludes_its_value():
    x = np.array([64, 128, 256, 512, 1024.0])
    flat = claims.power_law(x, np.ones(5), np.full(5, 0.01), 0.0)
    noisy = claims.power_law(x, x**-0.5, 0.3 * x**-0.5, -0.5)
    assert claims.combine(flat, noisy, rivals={"NTK": [-0.5, 0.0]}).verdict == "holds"  # the flat slope excludes it
    assert claims.combine(flat, noisy, rivals={"close": [0.001, -0.45]}).verdict == "inconclusive"
    with pytest.raises(ValueError, match="one value"):
        claims.combine(flat, noisy, rivals={"short": [0.0]})


def test_perturbation_needs_a_recorded_criterion_or_a_stated_exemption():
    by_hand = claims.Result(1.0, 1.0, 0.0, True, "looked fine")
    (row,) = by_hand.perturb(0.1)
    assert by_hand.passed and not row.rescored and not row.rejected
    inequality = claims.condition(True, "the boundary lies in (1.9, 2.1]", exempt="an inequality")
    assert all(r.rejected and r.exempt == "an inequality" for r in inequality.perturb(0.1))
    zero = claims.compare(0.0, 0.0, 0.1, exempt="a prediction of 0 is not changed by scaling")
    assert all(r.rejected for r in zero.perturb(0.1))


def test_results_travel_pickled_with_their_criteria():
    result = claims.combine(claims.compare(1.0, 1.0, 0.001, rivals={"1.1": 1.1}),
                            claims.power_law([1, 2, 4, 8], [1, 2, 4, 8.0], [0.01, 0.02, 0.04, 0.08], 1.0))
    back = cloudpickle.loads(cloudpickle.dumps(result))
    assert back.verdict == result.verdict == "holds" and back.criterion == result.criterion
    assert [r.ratio for r in back.perturb(0.1)] == [r.ratio for r in result.perturb(0.1)]


@pytest.fixture
def register():
    """Register throw-away claims; remove them afterwards."""
    added = []

    def add(id, result):
        claims.claim(id, "A synthetic claim.", "this test", sp.S.One)(lambda seed, size: result)
        added.append(id)
        return id

    yield add
    for id in added:
        base._REGISTRY.pop(id)


def test_verify_exits_nonzero_on_inconclusive_and_perturb_on_a_perturbation_that_passes(register, capsys):
    unsure = register("test.unsure", claims.compare(1.0, 1.0, 0.01, rivals={"1%": 1.01}))
    assert main(["verify", unsure, "--no-progress", "--jobs", "1"]) == 1
    assert "INCONCLUSIVE" in capsys.readouterr().out
    sharp = register("test.sharp", claims.compare(1.0, 1.0, 0.001, rivals={"2x": 2.0}))
    assert main(["verify", sharp, "--no-progress", "--jobs", "1"]) == 0
    assert main(["verify", sharp, "--perturb", "0.1", "--no-progress", "--jobs", "1"]) == 0
    assert "every perturbed prediction is rejected" in capsys.readouterr().out
    blunt = register("test.blunt", claims.compare(1.0, 1.0, 0.1))
    assert main(["verify", blunt, sharp, "--perturb", "0.1", "--no-progress", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "test.blunt: prediction x0.9: |error|/tolerance" in out and "NOT rejected" in out
    exempt = register("test.exempt", claims.condition(True, "ordered", exempt="an ordering, not a value"))
    assert main(["verify", exempt, "--perturb", "0.1", "--no-progress", "--jobs", "1"]) == 0
    assert "exempt (an ordering, not a value)" in capsys.readouterr().out
    for bad in ("1.5", "x"):
        with pytest.raises(SystemExit) as exit_:
            main(["verify", sharp, "--perturb", bad])
        assert exit_.value.code == 2 and "--perturb" in capsys.readouterr().err


def test_registration_rejects_duplicates_and_select_names_bad_patterns():
    with pytest.raises(ValueError, match="twice"):
        claims.claim("ntk.kernel_concentrates", "again", "x", sp.S.One)(lambda seed, size: None)
    with pytest.raises(ValueError, match="no claim matches"):
        claims.select(["no.such.claim"])
    assert [c.id for c in claims.select(["ntk"])] == sorted(c for c in claims.registry() if c.startswith("ntk."))
    assert claims.select(["nngp.mc_*"])[0].id.startswith("nngp.mc_agreement")


def test_every_registered_claim_is_complete():
    for c in claims.registry().values():
        assert c.id.count(".") >= 1 and c.statement.endswith(".") and c.source
        assert isinstance(c.prediction(), sp.Basic) and c.latex()


def test_runs_are_deterministic_for_a_seed():
    first = claims.verify(["ntk.mc_agreement.erf", "nngp.output_gaussian"], seed=3, size="quick")
    second = claims.verify(["ntk.mc_agreement.erf", "nngp.output_gaussian"], seed=3, size="quick")
    assert [(r.estimate, r.stderr) for _, r, _ in first] == [(r.estimate, r.stderr) for _, r, _ in second]
    other = claims.verify(["nngp.output_gaussian"], seed=4, size="quick")
    assert other[0][1].estimate != second[1][1].estimate


def test_sized_rejects_unknown_sizes():
    with pytest.raises(ValueError, match="size"):
        claims.sized("huge", 1, 2, 3)


@pytest.mark.slow
@pytest.mark.parametrize("claim_id", ["finite_width.dntk", "dynamics.lazy.ntk", "parameterizations.ntk_hidden_updates",
                                      "dynamics.linearization", "dynamics.cross_entropy", "nngp.mc_agreement.relu",
                                      "nngp.mc_agreement.tanh", "nngp.output_gaussian",
                                      "parameterizations.sp_blows_up"])
def test_claims_fixed_this_round_hold_and_reject_a_ten_percent_error(claim_id):
    """At the default size (seed 0) each holds -- its rival (n^-1/2, another parameterization's exponents, or the
    kernel of one layer fewer) is excluded -- and on the same measurements each perturbed prediction (x0.9, x1.1) is
    re-scored and rejected."""
    result, _ = claims.run(claims.select([claim_id])[0], seed=0)
    assert result.verdict == "holds", result.criterion
    rows = result.perturb(0.1)
    assert all(row.rescored and row.rejected for row in rows), rows
