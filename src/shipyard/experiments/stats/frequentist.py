"""Fixed-horizon frequentist tests: Welch's t-test and the two-proportion z-test."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from shipyard.experiments.stats._estimate import check_alpha, estimate
from shipyard.experiments.stats.summaries import ProportionSummary, Summary

__all__ = ["FrequentistResult", "frequentist_test", "two_proportion_test"]


@dataclass(frozen=True)
class FrequentistResult:
    """Effect of treatment over control with its two-sided CI and p-value.

    ``effect`` is a fraction ((T−C)/C) when ``relative``, else a difference in metric units;
    ``dof`` is infinite for normal-based tests.
    """

    method: str
    relative: bool
    alpha: float
    effect: float
    standard_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    dof: float
    control_mean: float
    treatment_mean: float

    @property
    def ci(self) -> tuple[float, float]:
        """The confidence interval ``(lower, upper)``."""
        return self.ci_lower, self.ci_upper

    @property
    def is_significant(self) -> bool:
        """Whether ``p_value < alpha``."""
        return self.p_value < self.alpha


def frequentist_test(control: Summary, treatment: Summary, *, relative: bool = True,
                     alpha: float = 0.05) -> FrequentistResult:
    """Welch's two-sided t-test on the absolute or relative effect.

    Absolute: ``Δ = μ_t − μ_c``, ``se² = σ²_t/n_t + σ²_c/n_c``. Relative (delta method):
    ``Δ = (μ_t − μ_c) / μ⁰_c``, ``se² = σ²_t / (μ⁰_c² n_t) + σ²_c μ⁰_t² / (μ⁰_c⁴ n_c)``, where
    ``μ⁰`` is the unadjusted mean (it differs from ``μ`` only under CUPED). Then ``t = Δ / se``,
    ``p = 2 (1 − F_ν(|t|))`` and ``CI = Δ ± F_ν⁻¹(1 − α/2) · se`` with the Welch–Satterthwaite
    ``ν = (σ²_c/n_c + σ²_t/n_t)² / (σ⁴_c/(n_c²(n_c−1)) + σ⁴_t/(n_t²(n_t−1)))`` from the per-arm
    variances, also for the relative effect (as gbstats does).
    """
    check_alpha(alpha)
    est = estimate(control, treatment, relative=relative)
    se = math.sqrt(est.variance)
    half_width = float(special.stdtrit(est.dof, 1 - alpha / 2)) * se
    p_value = 2 * float(special.stdtr(est.dof, -abs(est.effect) / se))
    return FrequentistResult(
        method="welch-t", relative=relative, alpha=alpha, effect=est.effect, standard_error=se,
        ci_lower=est.effect - half_width, ci_upper=est.effect + half_width, p_value=p_value,
        dof=est.dof, control_mean=est.control.unadjusted_mean,
        treatment_mean=est.treatment.unadjusted_mean,
    )


def two_proportion_test(control: ProportionSummary, treatment: ProportionSummary, *,
                        alpha: float = 0.05) -> FrequentistResult:
    """The classic two-proportion z-test on ``Δ = p_t − p_c``.

    ``z = Δ / √(p̄ (1 − p̄) (1/n_c + 1/n_t))`` with the pooled rate ``p̄``, ``p = 2 Φ(−|z|)``;
    the Wald CI ``Δ ± z_{1−α/2} √(p_c(1−p_c)/n_c + p_t(1−p_t)/n_t)`` (``standard_error``).
    """
    check_alpha(alpha)
    est = estimate(control, treatment, relative=False)
    pooled = control + treatment
    se_null = math.sqrt(pooled.variance * (1 / control.n + 1 / treatment.n))
    se = math.sqrt(est.variance)
    half_width = float(special.ndtri(1 - alpha / 2)) * se
    return FrequentistResult(
        method="two-proportion-z", relative=False, alpha=alpha, effect=est.effect,
        standard_error=se, ci_lower=est.effect - half_width, ci_upper=est.effect + half_width,
        p_value=2 * float(special.ndtr(-abs(est.effect) / se_null)), dof=math.inf,
        control_mean=control.mean, treatment_mean=treatment.mean,
    )
