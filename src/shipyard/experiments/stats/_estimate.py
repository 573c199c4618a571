"""The effect estimate every test starts from: point estimate, its variance and Welch's df."""

from __future__ import annotations

import math
from dataclasses import dataclass

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats.summaries import CupedSummary, MeanSummary, ProportionSummary, Summary


def check_alpha(alpha: float) -> None:
    """Reject a significance level outside (0, 1)."""
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
        raise InvalidInputError(f"alpha {alpha!r} must lie strictly between 0 and 1.",
                                hint="Use e.g. alpha=0.05 for 95% intervals.")


@dataclass(frozen=True)
class ArmMoments:
    """What a test needs of one arm: size, (adjusted) mean, unadjusted mean, per-unit variance."""

    n: int
    mean: float
    unadjusted_mean: float
    variance: float


@dataclass(frozen=True)
class Estimate:
    """The treatment-vs-control effect, the variance of that estimate and Welch's df."""

    control: ArmMoments
    treatment: ArmMoments
    relative: bool
    effect: float
    variance: float
    dof: float


def _pooled(a: MeanSummary | ProportionSummary,
            b: MeanSummary | ProportionSummary) -> MeanSummary | ProportionSummary:
    if type(a) is not type(b):
        raise InvalidInputError(
            f"Both arms must summarize the metric the same way, got {type(a).__name__} "
            f"and {type(b).__name__}.",
            hint="Use ProportionSummary for 0/1 outcomes in every arm, MeanSummary otherwise.",
        )
    return a + b


def cuped_theta(control: CupedSummary, treatment: CupedSummary) -> float:
    """CUPED's θ from both arms pooled: ``cov(y, x) / var(x)``; 0 when either variance is 0."""
    n = control.n + treatment.n
    metric = _pooled(control.metric, treatment.metric)
    covariate = _pooled(control.covariate, treatment.covariate)
    if metric.variance <= 0 or covariate.variance <= 0 or n <= 1:
        return 0.0
    pooled = CupedSummary(metric, covariate, control.cross_sum + treatment.cross_sum)
    return pooled.covariance / covariate.variance


def _cuped_arm(arm: CupedSummary, theta: float) -> ArmMoments:
    """``μ_adj = μ_y - θ μ_x``, ``σ²_adj = σ²_y + θ² σ²_x - 2 θ cov(y, x)``."""
    variance = arm.metric.variance + theta**2 * arm.covariate.variance - 2 * theta * arm.covariance
    return ArmMoments(arm.n, arm.metric.mean - theta * arm.covariate.mean, arm.metric.mean,
                      variance if arm.n > 1 else 0.0)


def arm_moments(control: Summary, treatment: Summary) -> tuple[ArmMoments, ArmMoments]:
    """Per-arm moments; CUPED pairs share one θ estimated from both arms (as gbstats does)."""
    if type(control) is not type(treatment):
        raise InvalidInputError(
            f"Control is a {type(control).__name__} but treatment a {type(treatment).__name__}.",
            hint="Summarize the metric the same way in both arms.",
        )
    if isinstance(control, CupedSummary) and isinstance(treatment, CupedSummary):
        theta = cuped_theta(control, treatment)
        return _cuped_arm(control, theta), _cuped_arm(treatment, theta)
    return tuple(ArmMoments(s.n, s.mean, s.mean, s.variance)  # type: ignore[return-value]
                 for s in (control, treatment))


def welch_dof(control: ArmMoments, treatment: ArmMoments) -> float:
    """Welch–Satterthwaite: ``(v_c/n_c + v_t/n_t)² / (v_c²/(n_c²(n_c-1)) + v_t²/(n_t²(n_t-1)))``."""
    a, b = control.variance / control.n, treatment.variance / treatment.n
    return (a + b) ** 2 / (a**2 / (control.n - 1) + b**2 / (treatment.n - 1))


def estimate(control: Summary, treatment: Summary, *, relative: bool) -> Estimate:
    """The effect and its delta-method variance, as gbstats computes them.

    Absolute: ``Δ = μ_t - μ_c``, ``Var = σ²_t/n_t + σ²_c/n_c``. Relative: ``Δ = (μ_t - μ_c) / μ⁰_c``
    with ``μ⁰`` the unadjusted mean (the same as ``μ`` except under CUPED) and
    ``Var = σ²_t / (μ⁰_c² n_t) + σ²_c μ⁰_t² / (μ⁰_c⁴ n_c)``.
    """
    c, t = arm_moments(control, treatment)
    if c.n < 2 or t.n < 2:
        raise InvalidInputError(f"Each arm needs at least 2 units (control {c.n}, treatment {t.n}).",
                                hint="Wait for more traffic before analyzing.")
    if relative and c.unadjusted_mean == 0:
        raise InvalidInputError("The control mean is 0, so a relative lift is undefined.",
                                hint="Pass relative=False for the absolute difference.")
    if relative:
        effect = (t.mean - c.mean) / c.unadjusted_mean
        variance = (t.variance / (c.unadjusted_mean**2 * t.n)
                    + c.variance * t.unadjusted_mean**2 / (c.unadjusted_mean**4 * c.n))
    else:
        effect = t.mean - c.mean
        variance = t.variance / t.n + c.variance / c.n
    if not (variance > 0 and math.isfinite(variance)):
        raise InvalidInputError(
            f"The effect's variance is {variance!r}: the metric does not vary in either arm.",
            hint="A constant metric (e.g. no conversions yet) cannot be tested; wait for data.",
        )
    return Estimate(c, t, relative, effect, variance, welch_dof(c, t))
