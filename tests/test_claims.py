"""The claims registry and its criteria: verdicts that can fail, determinism, registration."""

import numpy as np
import pytest
import sympy as sp

from theory import claims
from theory.claims import base
from theory.cli import main


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
    assert not result.passed and "<=" in result.criterion
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


def test_compare_states_its_tolerance():
    assert claims.compare(1.0, 1.04, 0.01).passed  # 0.04 <= 5 SE
    assert not claims.compare(1.0, 1.06, 0.01).passed
    assert claims.compare(1.0, 1.06, 0.01, bias=0.02).passed
    assert "5 SE + bias" in claims.compare(1.0, 1.0, 0.1).criterion


def test_compare_all_checks_every_entry():
    prediction, se = np.ones((3, 3)), np.full((3, 3), 0.01)
    estimate = prediction.copy()
    assert claims.compare_all(prediction, estimate, se).passed
    estimate[2, 1] += 0.06
    result = claims.compare_all(prediction, estimate, se, shown=(0, 0))
    assert not result.passed and result.estimate == 1.0  # the headline entry is not the failing one


def test_power_law_interval_covers_the_true_exponent_and_misses_a_wrong_one():
    x = np.array([64, 128, 256, 512, 1024.0])
    rng = np.random.default_rng(0)
    y = 3 * x**-0.5 * (1 + 0.01 * rng.standard_normal(5))
    y_se = 0.01 * y
    assert claims.power_law(x, y, y_se, -0.5).passed
    assert not claims.power_law(x, y, y_se, -0.45).passed
    corrected = 3 * x**-1.0 * np.exp(5 / x)  # a 1/x correction biases a pure power law, not the corrected fit
    assert claims.power_law(x, corrected, 0.002 * corrected, -1.0).estimate < -1.02
    fit = claims.power_law(x, corrected, 0.002 * corrected, -1.0, correction=True)
    assert fit.passed and abs(fit.estimate + 1) < 1e-9


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
