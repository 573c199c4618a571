"""Per-arm summaries: moments against numpy, additivity, validation."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats import CupedSummary, MeanSummary, ProportionSummary, RatioSummary
from tests.unit.experiments.conftest import Arm

TOL = 1e-6


def test_mean_summary_moments_match_numpy(arms: tuple[Arm, Arm]) -> None:
    x = arms[0].revenue
    s = MeanSummary.from_values(x)
    assert (s.n, s.mean, s.variance) == pytest.approx((len(x), x.mean(), x.var(ddof=1)), abs=TOL)


def test_proportion_summary_uses_p_times_one_minus_p(arms: tuple[Arm, Arm]) -> None:
    x = arms[0].converted
    s = ProportionSummary.from_values(x)
    p = x.mean()
    assert (s.mean, s.variance, s.sum, s.sum_squares) == pytest.approx((p, p * (1 - p), x.sum(), x.sum()))


def test_ratio_and_cuped_summaries_hold_the_cross_sums(arms: tuple[Arm, Arm]) -> None:
    a = arms[0]
    ratio = RatioSummary.from_values(a.clicks, a.sessions)
    assert ratio.mean == pytest.approx(a.clicks.sum() / a.sessions.sum(), abs=TOL)
    assert ratio.covariance == pytest.approx(np.cov(a.clicks, a.sessions)[0, 1], abs=TOL)
    cuped = CupedSummary.from_values(a.revenue, a.pre_revenue)
    assert (cuped.n, cuped.mean, cuped.variance) == pytest.approx(
        (len(a.revenue), a.revenue.mean(), a.revenue.var(ddof=1)), abs=TOL)
    assert cuped.covariance == pytest.approx(np.cov(a.revenue, a.pre_revenue)[0, 1], abs=TOL)
    binary = CupedSummary.from_values(a.converted, a.converted, binary=True)
    assert isinstance(binary.metric, ProportionSummary) and isinstance(binary.covariate, ProportionSummary)


def test_summaries_of_disjoint_units_add_up(arms: tuple[Arm, Arm]) -> None:
    a = arms[0]
    first, second = slice(0, 600), slice(600, None)
    for build in (lambda s: MeanSummary.from_values(a.revenue[s]),
                  lambda s: ProportionSummary.from_values(a.converted[s]),
                  lambda s: RatioSummary.from_values(a.clicks[s], a.sessions[s]),
                  lambda s: CupedSummary.from_values(a.revenue[s], a.pre_revenue[s])):
        total, parts = build(slice(None)), build(first) + build(second)
        assert type(parts) is type(total)
        assert (parts.n, parts.mean, parts.variance) == pytest.approx((total.n, total.mean, total.variance))
    with pytest.raises(TypeError):
        MeanSummary(1, 1.0, 1.0) + ProportionSummary(1, 1)


@pytest.mark.parametrize("build, message", [
    (lambda: ProportionSummary(10, 11), "between 0 and n=10"),
    (lambda: MeanSummary(-1, 0.0, 0.0), "non-negative integer"),
    (lambda: MeanSummary.from_values([1.0, float("nan")]), "finite numbers"),
    (lambda: ProportionSummary.from_values([0, 1, 2]), "must be 0 or 1"),
    (lambda: RatioSummary.from_values([1.0, 2.0], [1.0]), "count different units"),
    (lambda: CupedSummary(MeanSummary(3, 1.0, 1.0), MeanSummary(3, 1.0, 1.0), float("inf")), "not finite"),
])
def test_malformed_summaries_are_rejected(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match=message):
        build()


def test_empty_and_single_unit_summaries_have_zero_moments() -> None:
    assert (MeanSummary(0, 0.0, 0.0).mean, MeanSummary(1, 3.0, 9.0).variance) == (0.0, 0.0)
    assert ProportionSummary(0, 0).mean == 0.0
    assert RatioSummary(MeanSummary(2, 1.0, 1.0), MeanSummary(2, 0.0, 0.0), 0.0).mean == 0.0
