"""Sample-ratio mismatch against scipy's chi-square, on broken and fair splits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats import SRM_THRESHOLD, srm_test

TOL = 1e-6


@pytest.mark.parametrize("counts, weights", [
    ([5000, 5100], None),
    ([10_210, 9_790], [0.5, 0.5]),
    ([1_020, 2_950, 6_030], [0.1, 0.3, 0.6]),
    ([333, 300, 367], [1, 1, 1]),  # weights need not sum to 1
])
def test_chi_square_matches_scipy(counts: list[int], weights: list[float] | None) -> None:
    total = sum(counts)
    shares = np.ones(len(counts)) if weights is None else np.asarray(weights, dtype=float)
    expected = total * shares / shares.sum()
    ref = stats.chisquare(counts, f_exp=expected)
    r = srm_test(counts, weights)
    assert (r.chi2, r.p_value) == pytest.approx((ref.statistic, ref.pvalue), abs=TOL)
    assert r.expected == pytest.approx(tuple(expected), abs=TOL)
    assert r.dof == len(counts) - 1 and r.threshold == SRM_THRESHOLD == 0.001


def test_a_broken_50_50_split_is_flagged() -> None:
    r = srm_test([101_600, 98_400], [0.5, 0.5])  # 50.8% / 49.2% of 200,000 units
    assert r.chi2 == pytest.approx(51.2, abs=TOL)
    assert r.p_value < 1e-10 and r.srm_detected


def test_a_fair_split_is_not_flagged() -> None:
    assert not srm_test([100_150, 99_850], [0.5, 0.5]).srm_detected


def test_false_alarms_on_fair_splits_are_rare_and_broken_splits_always_caught() -> None:
    rng = np.random.default_rng(5)
    fair = rng.binomial(200_000, 0.5, 1000)
    broken = rng.binomial(200_000, 0.508, 200)
    false_alarms = np.mean([srm_test([k, 200_000 - k]).srm_detected for k in fair])
    assert false_alarms <= 0.005  # the threshold is p < 0.001
    assert all(srm_test([k, 200_000 - k]).srm_detected for k in broken)


def test_no_units_yet_is_no_mismatch() -> None:
    r = srm_test([0, 0])
    assert r.p_value == 1.0 and not r.srm_detected


@pytest.mark.parametrize("counts, weights, message", [
    ([100], None, "at least 2 variants"),
    ([100, 100], [0.5, 0.3, 0.2], "one count per variant"),
    ([100, -1], None, "non-negative"),
    ([100, 100], [1.0, 0.0], "positive"),
    ([100.5, 100], None, "whole numbers"),
])
def test_malformed_input_is_rejected(counts: list[int], weights: list[float] | None, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        srm_test(counts, weights)
