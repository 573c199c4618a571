"""Bayesian comparison with a normal model of the effect (gbstats ``EffectBayesianABTest``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats._estimate import check_alpha, estimate
from shipyard.experiments.stats.summaries import Summary

__all__ = ["BayesianResult", "NormalPrior", "bayesian_test"]

_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class NormalPrior:
    """A proper normal prior ``N(mean, variance)`` on the effect (the relative lift by default)."""

    mean: float = 0.0
    variance: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.variance) and self.variance > 0):
            raise InvalidInputError(
                f"NormalPrior({self.mean!r}, {self.variance!r}) needs a finite mean and a "
                "positive variance.",
                hint="E.g. NormalPrior(0.0, 0.3**2) says most lifts lie within ±60%.",
            )


@dataclass(frozen=True)
class BayesianResult:
    """The posterior of the effect: mean, sd, credible interval, chance to win and risk.

    ``risk_control`` is the expected loss of keeping control, ``E[max(Δ, 0)]``, and
    ``risk_treatment`` that of shipping treatment, ``E[max(−Δ, 0)]`` (swapped when lower is
    better); both in the units of ``effect``.
    """

    relative: bool
    alpha: float
    effect: float
    standard_deviation: float
    ci_lower: float
    ci_upper: float
    chance_to_win: float
    risk_control: float
    risk_treatment: float
    control_mean: float
    treatment_mean: float

    @property
    def ci(self) -> tuple[float, float]:
        """The equal-tailed credible interval ``(lower, upper)``."""
        return self.ci_lower, self.ci_upper


def _expected_positive_part(mu: float, sigma: float) -> float:
    """``E[max(X, 0)]`` for ``X ~ N(μ, σ²)``: ``μ Φ(μ/σ) + σ φ(μ/σ)``."""
    z = mu / sigma
    return mu * float(special.ndtr(z)) + sigma * _INV_SQRT_2PI * math.exp(-0.5 * z * z)


def bayesian_test(control: Summary, treatment: Summary, *, relative: bool = True,
                  prior: NormalPrior | None = None, alpha: float = 0.05,
                  lower_is_better: bool = False) -> BayesianResult:
    """Posterior of the effect under a normal likelihood and an improper or normal prior.

    The data give ``Δ̂ ~ N(Δ, v)`` (``v`` the delta-method variance). Improper (flat) prior:
    ``Δ | data ~ N(Δ̂, v)``. Prior ``N(m, τ²)``: precision ``1/v + 1/τ²`` and mean
    ``(Δ̂/v + m/τ²) / (1/v + 1/τ²)``. Then ``P(win) = Φ(μ/σ)`` (``1 − Φ(μ/σ)`` when lower is
    better), ``CI = μ ± z_{1−α/2} σ``, and risk as in :class:`BayesianResult`.
    """
    check_alpha(alpha)
    est = estimate(control, treatment, relative=relative)
    precision = 1 / est.variance + (1 / prior.variance if prior else 0.0)
    mu = (est.effect / est.variance + prior.mean / prior.variance) / precision if prior else est.effect
    sigma = math.sqrt(1 / precision)
    z = float(special.ndtri(1 - alpha / 2))
    up, down = _expected_positive_part(mu, sigma), _expected_positive_part(-mu, sigma)
    chance_up = float(special.ndtr(mu / sigma))
    return BayesianResult(
        relative=relative, alpha=alpha, effect=mu, standard_deviation=sigma,
        ci_lower=mu - z * sigma, ci_upper=mu + z * sigma,
        chance_to_win=1 - chance_up if lower_is_better else chance_up,
        risk_control=down if lower_is_better else up,
        risk_treatment=up if lower_is_better else down,
        control_mean=est.control.unadjusted_mean, treatment_mean=est.treatment.unadjusted_mean,
    )
