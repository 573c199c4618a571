"""Fixed-horizon tests against scipy, statsmodels and hand-derived delta-method formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats import (
    CupedSummary,
    MeanSummary,
    ProportionSummary,
    RatioSummary,
    cuped_theta,
    frequentist_test,
    two_proportion_test,
)
from tests.unit.experiments.conftest import Arm

TOL = 1e-6


def _t_reference(effect: float, variance: float, dof: float, alpha: float = 0.05) -> tuple[float, ...]:
    """(lower, upper, p) of a two-sided t-test, from scipy.stats.t."""
    se = math.sqrt(variance)
    half = stats.t.ppf(1 - alpha / 2, dof) * se
    return effect - half, effect + half, 2 * stats.t.sf(abs(effect) / se, dof)


def _welch_dof(var_c: float, n_c: int, var_t: float, n_t: int) -> float:
    a, b = var_c / n_c, var_t / n_t
    return (a + b) ** 2 / (a**2 / (n_c - 1) + b**2 / (n_t - 1))


def test_absolute_welch_matches_scipy_ttest_ind(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    ref = stats.ttest_ind(t.revenue, c.revenue, equal_var=False)
    ci = ref.confidence_interval(0.95)
    r = frequentist_test(MeanSummary.from_values(c.revenue), MeanSummary.from_values(t.revenue),
                         relative=False)
    assert r.effect == pytest.approx(t.revenue.mean() - c.revenue.mean(), abs=TOL)
    assert r.effect / r.standard_error == pytest.approx(ref.statistic, abs=TOL)
    assert r.p_value == pytest.approx(ref.pvalue, abs=TOL)
    assert r.dof == pytest.approx(ref.df, abs=TOL)
    assert r.ci == pytest.approx((ci.low, ci.high), abs=TOL)
    assert r.method == "welch-t" and not r.relative and r.is_significant


def test_alpha_sets_the_confidence_level(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    ci = stats.ttest_ind(t.revenue, c.revenue, equal_var=False).confidence_interval(0.90)
    r = frequentist_test(MeanSummary.from_values(c.revenue), MeanSummary.from_values(t.revenue),
                         relative=False, alpha=0.10)
    assert r.ci == pytest.approx((ci.low, ci.high), abs=TOL)


def test_relative_lift_uses_the_delta_method(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    mc, mt, vc, vt = c.revenue.mean(), t.revenue.mean(), c.revenue.var(ddof=1), t.revenue.var(ddof=1)
    nc, nt = len(c.revenue), len(t.revenue)
    variance = vt / (mc**2 * nt) + vc * mt**2 / (mc**4 * nc)
    lift, dof = (mt - mc) / mc, _welch_dof(vc, nc, vt, nt)
    r = frequentist_test(MeanSummary.from_values(c.revenue), MeanSummary.from_values(t.revenue))
    assert r.relative and r.effect == pytest.approx(lift, abs=TOL)
    assert r.standard_error == pytest.approx(math.sqrt(variance), abs=TOL)
    assert r.dof == pytest.approx(dof, abs=TOL)  # Welch's df from the per-arm variances
    assert (r.ci_lower, r.ci_upper, r.p_value) == pytest.approx(_t_reference(lift, variance, dof), abs=TOL)
    assert (r.control_mean, r.treatment_mean) == pytest.approx((mc, mt), abs=TOL)


def test_proportions_use_the_binomial_variance(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    pc, pt, nc, nt = c.converted.mean(), t.converted.mean(), len(c.converted), len(t.converted)
    vc, vt = pc * (1 - pc), pt * (1 - pt)
    r = frequentist_test(ProportionSummary.from_values(c.converted),
                         ProportionSummary.from_values(t.converted), relative=False)
    dof = _welch_dof(vc, nc, vt, nt)
    assert r.effect == pytest.approx(pt - pc, abs=TOL)
    assert r.dof == pytest.approx(dof, abs=TOL)
    assert (r.ci_lower, r.ci_upper, r.p_value) == pytest.approx(
        _t_reference(pt - pc, vc / nc + vt / nt, dof), abs=TOL)


def test_two_proportion_z_test_matches_statsmodels(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    counts, nobs = [t.converted.sum(), c.converted.sum()], [len(t.converted), len(c.converted)]
    z, p = proportions_ztest(counts, nobs)
    low, high = confint_proportions_2indep(counts[0], nobs[0], counts[1], nobs[1], method="wald")
    r = two_proportion_test(ProportionSummary.from_values(c.converted),
                            ProportionSummary.from_values(t.converted))
    assert r.p_value == pytest.approx(p, abs=TOL)
    assert r.ci == pytest.approx((low, high), abs=TOL)
    assert r.effect == pytest.approx(counts[0] / nobs[0] - counts[1] / nobs[1], abs=TOL)
    assert r.method == "two-proportion-z" and math.isinf(r.dof)
    pooled = sum(counts) / sum(nobs)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / nobs[0] + 1 / nobs[1]))
    assert r.effect / se_null == pytest.approx(z, abs=TOL)


def _ratio_unit_variance(m: np.ndarray, d: np.ndarray) -> float:
    """Delta method for mean(m) / mean(d), derived by hand with numpy's covariance."""
    cov = np.cov(m, d, ddof=1)
    mu_m, mu_d = m.mean(), d.mean()
    return cov[0, 0] / mu_d**2 - 2 * cov[0, 1] * mu_m / mu_d**3 + mu_m**2 * cov[1, 1] / mu_d**4


@pytest.mark.parametrize("relative", [False, True])
def test_ratio_metrics_use_the_delta_method(arms: tuple[Arm, Arm], relative: bool) -> None:
    c, t = arms
    rc, rt = c.clicks.sum() / c.sessions.sum(), t.clicks.sum() / t.sessions.sum()
    vc, vt = _ratio_unit_variance(c.clicks, c.sessions), _ratio_unit_variance(t.clicks, t.sessions)
    nc, nt = len(c.clicks), len(t.clicks)
    if relative:
        effect, variance = (rt - rc) / rc, vt / (rc**2 * nt) + vc * rt**2 / (rc**4 * nc)
    else:
        effect, variance = rt - rc, vt / nt + vc / nc
    dof = _welch_dof(vc, nc, vt, nt)
    r = frequentist_test(RatioSummary.from_values(c.clicks, c.sessions),
                         RatioSummary.from_values(t.clicks, t.sessions), relative=relative)
    assert r.effect == pytest.approx(effect, abs=TOL)
    assert r.standard_error == pytest.approx(math.sqrt(variance), abs=TOL)
    assert (r.ci_lower, r.ci_upper, r.p_value) == pytest.approx(_t_reference(effect, variance, dof), abs=TOL)


def _cuped_reference(c: Arm, t: Arm) -> tuple[float, np.ndarray, np.ndarray]:
    """θ from both arms pooled, and each arm's adjusted values y − θ x."""
    y, x = np.concatenate([c.revenue, t.revenue]), np.concatenate([c.pre_revenue, t.pre_revenue])
    theta = np.cov(y, x, ddof=1)[0, 1] / x.var(ddof=1)
    return theta, c.revenue - theta * c.pre_revenue, t.revenue - theta * t.pre_revenue


def test_cuped_absolute_effect_is_welch_on_adjusted_values(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    theta, yc, yt = _cuped_reference(c, t)
    sc = CupedSummary.from_values(c.revenue, c.pre_revenue)
    st = CupedSummary.from_values(t.revenue, t.pre_revenue)
    assert cuped_theta(sc, st) == pytest.approx(theta, abs=TOL)
    ref = stats.ttest_ind(yt, yc, equal_var=False)
    r = frequentist_test(sc, st, relative=False)
    assert r.effect == pytest.approx(yt.mean() - yc.mean(), abs=TOL)
    assert (r.p_value, r.dof) == pytest.approx((ref.pvalue, ref.df), abs=TOL)
    assert r.ci == pytest.approx(tuple(ref.confidence_interval(0.95)), abs=TOL)
    plain = frequentist_test(MeanSummary.from_values(c.revenue), MeanSummary.from_values(t.revenue),
                             relative=False)
    assert r.standard_error < 0.7 * plain.standard_error  # the pre-period explains most variance


def test_cuped_relative_effect_is_over_the_unadjusted_control_mean(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    _, yc, yt = _cuped_reference(c, t)
    mc, mt = c.revenue.mean(), t.revenue.mean()  # unadjusted means
    vc, vt, nc, nt = yc.var(ddof=1), yt.var(ddof=1), len(yc), len(yt)
    effect, variance = (yt.mean() - yc.mean()) / mc, vt / (mc**2 * nt) + vc * mt**2 / (mc**4 * nc)
    r = frequentist_test(CupedSummary.from_values(c.revenue, c.pre_revenue),
                         CupedSummary.from_values(t.revenue, t.pre_revenue))
    assert r.effect == pytest.approx(effect, abs=TOL)
    assert r.standard_error == pytest.approx(math.sqrt(variance), abs=TOL)
    assert (r.ci_lower, r.ci_upper, r.p_value) == pytest.approx(
        _t_reference(effect, variance, _welch_dof(vc, nc, vt, nt)), abs=TOL)
    assert (r.control_mean, r.treatment_mean) == pytest.approx((mc, mt), abs=TOL)


def test_cuped_without_covariate_variance_falls_back_to_the_plain_test(arms: tuple[Arm, Arm]) -> None:
    c, t = arms
    flat = [CupedSummary.from_values(a.revenue, np.ones_like(a.revenue)) for a in arms]
    plain = frequentist_test(MeanSummary.from_values(c.revenue), MeanSummary.from_values(t.revenue))
    assert cuped_theta(*flat) == 0.0
    assert frequentist_test(*flat) == plain


def test_fixed_horizon_power_matches_the_analytic_power() -> None:
    # 2,000 experiments, 500 units per arm, true effect chosen for ~80% power at alpha 0.05
    rng = np.random.default_rng(11)
    n, sims, sigma, alpha = 500, 2000, 1.0, 0.05
    effect = 2.8 * sigma * math.sqrt(2 / n)
    control = rng.normal(0.0, sigma, (sims, n))
    treatment = rng.normal(effect, sigma, (sims, n))
    hits = sum(frequentist_test(MeanSummary.from_values(a), MeanSummary.from_values(b), relative=False,
                                alpha=alpha).p_value < alpha for a, b in zip(control, treatment, strict=True))
    dof, ncp = 2 * n - 2, effect / (sigma * math.sqrt(2 / n))
    critical = stats.t.ppf(1 - alpha / 2, dof)
    analytic = stats.nct.sf(critical, dof, ncp) + stats.nct.cdf(-critical, dof, ncp)
    assert analytic == pytest.approx(0.80, abs=0.01)
    assert hits / sims == pytest.approx(analytic, abs=0.03)  # ~3.3 standard errors of 2,000 draws


def test_inputs_that_cannot_be_tested_are_rejected() -> None:
    a, b = MeanSummary(100, 50.0, 60.0), MeanSummary(120, 70.0, 90.0)
    with pytest.raises(InvalidInputError, match="control mean is 0") as info:
        frequentist_test(MeanSummary(100, 0.0, 60.0), b)
    assert "relative=False" in (info.value.hint or "")
    with pytest.raises(InvalidInputError, match="at least 2 units"):
        frequentist_test(MeanSummary(1, 5.0, 25.0), b)
    with pytest.raises(InvalidInputError, match="does not vary"):
        frequentist_test(ProportionSummary(100, 0), ProportionSummary(100, 0), relative=False)
    with pytest.raises(InvalidInputError, match="Control is a MeanSummary but treatment a ProportionSummary"):
        frequentist_test(a, ProportionSummary(120, 10))
    with pytest.raises(InvalidInputError, match="alpha"):
        frequentist_test(a, b, alpha=1.5)
