"""The μTransfer and cross-entropy claims' criteria on synthetic measurements: they hold on the predicted law and
fail when the truth is the rival."""

import numpy as np
import pytest

from theory.claims import dynamics, parameterizations
from theory.montecarlo.sweep import Sweep


def _sweep(exponent, widths=(128, 256, 512, 1024, 2048), networks=6, seed=0):
    """Log-loss (log₂ η - exponent log₂(n/128) + 8)²/4 per network, with per-network noise: the optimum moves like
    n^exponent."""
    widths, lrs = np.array(widths), 2.0 ** np.arange(-14.0, -1.9, 0.5)
    rng = np.random.default_rng(seed)
    centre = exponent * np.log2(widths / 128) - 8
    logs = (np.log2(lrs)[None, :, None] - centre[:, None, None]) ** 2 / 4
    logs = logs + rng.normal(0, 0.02, (len(widths), len(lrs), networks))
    return Sweep(widths, lrs, np.exp(logs), None, np.zeros(logs.shape, bool))


@pytest.mark.parametrize("truth, verdict", [(0.0, "holds"), (-1.0, "fails")])
def test_the_transfer_criterion_holds_on_a_fixed_optimum_and_fails_on_sps_drift(truth, verdict):
    result, opt = parameterizations._optimal_lr(_sweep(truth), 0.0, {"SP's n^-1": -1.0}, "optimal lr", exempt=None)
    assert opt.bracketed.all()
    assert result.verdict == verdict


@pytest.mark.parametrize("truth, holds", [(-1.0, True), (0.0, False)])
def test_the_shift_criterion_holds_on_sps_drift_and_not_on_a_fixed_optimum(truth, holds):
    """With the 1/n correction a flat optimum is not told from -1 by the fit (inconclusive), never a pass."""
    result, _ = parameterizations._optimal_lr(_sweep(truth), -1.0, {"no shift": 0.0}, "optimal lr", exempt=None,
                                              correction=True)
    assert (result.verdict == "holds") == holds


def test_an_optimum_outside_the_grid_fails_the_transfer_claim():
    result, opt = parameterizations._optimal_lr(_sweep(2.0), 0.0, {"n^-1": -1.0}, "optimal lr", exempt=None)
    assert not opt.bracketed.all() and result.verdict == "fails"


def test_the_onset_is_interpolated_and_infinite_when_never_reached():
    times = np.array([0.0, 1.0, 2.0, 3.0])
    assert dynamics._onset(times, np.array([0.0, 0.1, 0.3, 0.5]), 0.2) == pytest.approx(1.5)
    assert dynamics._onset(times, np.array([0.0, 0.1, 0.3, 0.5]), 0.0) == 0.0
    assert dynamics._onset(times, np.array([0.0, 0.1, 0.1, 0.1]), 0.2) == np.inf


def test_the_calculus_gives_the_max_lr_exponents_the_claim_compares_with():
    assert [float(p.max_lr_exponent()) for p in parameterizations.MAX_LR_SETUPS.values()] == [-1.0, 0.0, 0.0]
