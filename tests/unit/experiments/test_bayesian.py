"""Bayesian comparison against the conjugate normal update and numerical integration."""

from __future__ import annotations

import math

import pytest
from scipy import integrate, stats

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats import (
    MeanSummary,
    NormalPrior,
    ProportionSummary,
    bayesian_test,
    frequentist_test,
)
from tests.unit.experiments.conftest import Arm

TOL = 1e-6


def _expected_loss(mu: float, sigma: float, sign: float) -> float:
    """E[max(sign·X, 0)] for X ~ N(mu, sigma²), by numerical integration."""
    density = stats.norm(mu, sigma).pdf
    value, _ = integrate.quad(lambda x: max(sign * x, 0.0) * density(x), mu - 12 * sigma, mu + 12 * sigma,
                              points=[0.0], limit=200)
    return value


@pytest.fixture
def summaries(arms: tuple[Arm, Arm]) -> tuple[ProportionSummary, ProportionSummary]:
    c, t = arms
    return ProportionSummary.from_values(c.converted), ProportionSummary.from_values(t.converted)


@pytest.mark.parametrize("relative", [True, False])
def test_improper_prior_posterior_is_the_data_likelihood(summaries: tuple, relative: bool) -> None:
    freq = frequentist_test(*summaries, relative=relative)
    r = bayesian_test(*summaries, relative=relative)
    mu, sigma = freq.effect, freq.standard_error
    assert (r.effect, r.standard_deviation) == pytest.approx((mu, sigma), abs=TOL)
    assert r.chance_to_win == pytest.approx(stats.norm.sf(0, mu, sigma), abs=TOL)
    assert r.ci == pytest.approx(tuple(stats.norm.ppf([0.025, 0.975], mu, sigma)), abs=TOL)
    assert r.risk_control == pytest.approx(_expected_loss(mu, sigma, +1), abs=TOL)
    assert r.risk_treatment == pytest.approx(_expected_loss(mu, sigma, -1), abs=TOL)


def test_normal_prior_gives_the_conjugate_posterior(summaries: tuple) -> None:
    prior = NormalPrior(mean=0.0, variance=0.05**2)
    freq = frequentist_test(*summaries)
    data_mean, data_var = freq.effect, freq.standard_error**2
    post_var = 1 / (1 / data_var + 1 / prior.variance)
    post_mean = post_var * (data_mean / data_var + prior.mean / prior.variance)
    r = bayesian_test(*summaries, prior=prior)
    assert (r.effect, r.standard_deviation) == pytest.approx((post_mean, math.sqrt(post_var)), abs=TOL)
    assert abs(r.effect) < abs(data_mean)  # shrunk towards the prior mean
    assert r.chance_to_win == pytest.approx(stats.norm.sf(0, post_mean, math.sqrt(post_var)), abs=TOL)
    assert r.risk_control == pytest.approx(_expected_loss(post_mean, math.sqrt(post_var), +1), abs=TOL)


def test_lower_is_better_flips_chance_to_win_and_risks(summaries: tuple) -> None:
    up, down = bayesian_test(*summaries), bayesian_test(*summaries, lower_is_better=True)
    assert down.chance_to_win == pytest.approx(1 - up.chance_to_win, abs=1e-12)
    assert (down.risk_control, down.risk_treatment) == (up.risk_treatment, up.risk_control)


def test_credible_level_follows_alpha(summaries: tuple) -> None:
    r = bayesian_test(*summaries, alpha=0.2)
    assert r.ci == pytest.approx(tuple(stats.norm.ppf([0.1, 0.9], r.effect, r.standard_deviation)), abs=TOL)


@pytest.mark.parametrize("mean, variance", [(0.0, 0.0), (0.0, -1.0), (float("nan"), 1.0)])
def test_a_prior_needs_a_finite_mean_and_positive_variance(mean: float, variance: float) -> None:
    with pytest.raises(InvalidInputError, match="NormalPrior"):
        NormalPrior(mean, variance)


def test_bayesian_test_shares_the_input_checks() -> None:
    with pytest.raises(InvalidInputError, match="control mean is 0"):
        bayesian_test(MeanSummary(10, 0.0, 5.0), MeanSummary(10, 3.0, 5.0))
