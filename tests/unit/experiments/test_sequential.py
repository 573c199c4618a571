"""Sequential testing: the published formulas, and validity under daily peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats import (
    DEFAULT_TUNING_N,
    MeanSummary,
    frequentist_test,
    sequential_rho,
    sequential_test,
)
from tests.unit.experiments.conftest import Arm

TOL = 1e-6


def test_rho_is_eq_161_with_n_star_5000() -> None:
    alpha = 0.05
    expected = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / 5000)
    assert DEFAULT_TUNING_N == 5000
    assert sequential_rho(alpha) == pytest.approx(expected, abs=1e-12)


def test_interval_and_p_value_follow_waudby_smith_eqs_9_and_155(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    sc, st = MeanSummary.from_values(c.revenue), MeanSummary.from_values(t.revenue)
    fixed = frequentist_test(sc, st, relative=False)  # same effect and standard error
    r = sequential_test(sc, st, relative=False)
    n, alpha, rho = sc.n + st.n, 0.05, sequential_rho(0.05)
    s2 = fixed.standard_error**2 * n
    half = math.sqrt(s2 * 2 * (n * rho**2 + 1) * math.log(math.sqrt(n * rho**2 + 1) / alpha) / (n * rho) ** 2)
    st2 = fixed.effect**2 * n / fixed.standard_error**2
    e_value = math.exp(rho**2 * st2 / (2 * (n * rho**2 + 1))) / math.sqrt(n * rho**2 + 1)
    assert r.effect == pytest.approx(fixed.effect, abs=TOL)
    assert r.ci == pytest.approx((r.effect - half, r.effect + half), abs=TOL)
    assert r.p_value == pytest.approx(min(1.0, 1 / e_value), abs=TOL)
    assert r.method == "sequential" and math.isinf(r.dof)
    # always-valid intervals are wider than the fixed-horizon ones
    assert r.ci_lower < fixed.ci_lower and r.ci_upper > fixed.ci_upper


@pytest.mark.parametrize("scale", [0.2, 1.0, 3.0])
def test_p_value_crosses_alpha_exactly_where_the_interval_excludes_zero(scale: float) -> None:
    # the confidence sequence and the e-value are dual: p <= alpha  <=>  0 is outside the CI
    control = MeanSummary(3000, 30_000.0, 3000 * (100 + 9))
    outcomes = set()
    for shift in np.linspace(0.0, 0.4, 41) * scale:
        treatment = MeanSummary(3000, 3000 * (10 + shift), 3000 * ((10 + shift) ** 2 + 9))
        r = sequential_test(control, treatment, relative=False)
        if abs(abs(r.effect) - (r.ci_upper - r.effect)) > 1e-9:
            assert (r.p_value < r.alpha) == (r.ci_lower > 0 or r.ci_upper < 0)
            outcomes.add(r.p_value < r.alpha)
    assert outcomes == ({False} if scale < 1 else {False, True})


def test_a_larger_tuning_n_trades_early_for_late_sensitivity(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    sc, st = MeanSummary.from_values(c.revenue), MeanSummary.from_values(t.revenue)
    at_5000 = sequential_test(sc, st, relative=False)
    at_500k = sequential_test(sc, st, relative=False, tuning_n=500_000)
    assert at_500k.ci_upper - at_500k.ci_lower > at_5000.ci_upper - at_5000.ci_lower  # N = 3,200 << 500k
    with pytest.raises(InvalidInputError, match="tuning_n"):
        sequential_test(sc, st, tuning_n=0)


def _aa_peeking_rejections(sims: int, looks: int, per_look: int, alpha: float) -> tuple[float, float]:
    """Share of A/A experiments ever declared significant when looking after every batch."""
    rng = np.random.default_rng(2024)
    sequential_hits = naive_hits = 0
    for _ in range(sims):
        values = rng.normal(10.0, 3.0, (2, looks, per_look))
        sums, squares = values.sum(axis=2).cumsum(axis=1), (values**2).sum(axis=2).cumsum(axis=1)
        seq_rejected = naive_rejected = False
        for day in range(looks):
            n = per_look * (day + 1)
            control = MeanSummary(n, float(sums[0, day]), float(squares[0, day]))
            treatment = MeanSummary(n, float(sums[1, day]), float(squares[1, day]))
            seq_rejected |= sequential_test(control, treatment, alpha=alpha).p_value < alpha
            naive_rejected |= frequentist_test(control, treatment, alpha=alpha).p_value < alpha
        sequential_hits += seq_rejected
        naive_hits += naive_rejected
    return sequential_hits / sims, naive_hits / sims


def test_peeking_daily_keeps_the_sequential_false_positive_rate_under_alpha() -> None:
    # 1,000 A/A tests, 20 daily looks of 100 new units per arm: stop at the first p < alpha
    alpha = 0.05
    sequential_fpr, naive_fpr = _aa_peeking_rejections(sims=1000, looks=20, per_look=100, alpha=alpha)
    assert sequential_fpr <= alpha
    assert naive_fpr > 2 * alpha  # the fixed-horizon test, peeked at daily, is badly inflated
