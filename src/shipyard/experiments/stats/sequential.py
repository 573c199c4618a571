"""Always-valid inference: asymptotic confidence sequences (Waudby-Smith et al., 2023).

The interval and p-value stay valid however often one looks at the data, so an experiment
can be checked every day and stopped as soon as ``p < alpha``. This is the scheme of
GrowthBook's stats engine (gbstats ``SequentialTwoSidedTTest``; arXiv:2103.06476v7,
eqs. 9, 155 and 161). The p-value of one look is valid on its own; across looks, the running
minimum is too.
"""

from __future__ import annotations

import math

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats._estimate import check_alpha, estimate
from shipyard.experiments.stats.frequentist import FrequentistResult
from shipyard.experiments.stats.summaries import Summary

__all__ = ["DEFAULT_TUNING_N", "sequential_rho", "sequential_test"]

DEFAULT_TUNING_N = 5000.0  # N*: the sample size at which the sequence is tightest


def sequential_rho(alpha: float, tuning_n: float = DEFAULT_TUNING_N) -> float:
    """The mixing parameter ``ρ = √((−2 ln α + ln(1 − 2 ln α)) / N*)`` (eq. 161)."""
    check_alpha(alpha)
    if not (isinstance(tuning_n, int | float) and tuning_n > 0):
        raise InvalidInputError(f"tuning_n {tuning_n!r} must be a positive number of units.",
                                hint="Use roughly the total sample size you expect; 5000 by default.")
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(1 - 2 * log_alpha)) / tuning_n)


def sequential_test(control: Summary, treatment: Summary, *, relative: bool = True,
                    alpha: float = 0.05, tuning_n: float = DEFAULT_TUNING_N) -> FrequentistResult:
    """Two-sided asymptotic confidence sequence and always-valid p-value for the effect.

    With ``N = n_c + n_t``, ``s² = N · Var(Δ)`` and ``ρ`` from :func:`sequential_rho`:
    ``CI = Δ ± s √(2 (Nρ² + 1) ln(√(Nρ² + 1) / α) / (N² ρ²))`` (eq. 9) and
    ``p = min(1, √(Nρ² + 1) · exp(−ρ² N Δ² / (2 Var(Δ) (Nρ² + 1))))`` (eq. 155).
    """
    rho = sequential_rho(alpha, tuning_n)
    est = estimate(control, treatment, relative=relative)
    n = est.control.n + est.treatment.n
    spread = n * rho**2 + 1
    s = math.sqrt(est.variance * n)
    half_width = s * math.sqrt(2 * spread * math.log(math.sqrt(spread) / alpha) / (n * rho) ** 2)
    z2 = est.effect**2 / est.variance
    log_e_value = rho**2 * n * z2 / (2 * spread) - 0.5 * math.log(spread)
    return FrequentistResult(
        method="sequential", relative=relative, alpha=alpha, effect=est.effect,
        standard_error=math.sqrt(est.variance), ci_lower=est.effect - half_width,
        ci_upper=est.effect + half_width, p_value=math.exp(-max(log_e_value, 0.0)), dof=math.inf,
        control_mean=est.control.unadjusted_mean, treatment_mean=est.treatment.unadjusted_mean,
    )
