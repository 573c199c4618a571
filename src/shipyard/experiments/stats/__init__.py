"""Experiment statistics as pure functions over per-arm sufficient statistics.

Conventions follow GrowthBook's open-source stats engine (gbstats): the relative lift
(T−C)/C is a fraction with a delta-method variance, Welch–Satterthwaite degrees of freedom
(also for relative effects), two-sided tests at alpha 0.05, binomial per-unit variance
p(1−p), CUPED's relative effect over the unadjusted control mean, sequential testing by
asymptotic confidence sequences (N* = 5000) and SRM flagged at p < 0.001.
"""

from __future__ import annotations

from shipyard.experiments.stats._estimate import cuped_theta
from shipyard.experiments.stats.bayesian import BayesianResult, NormalPrior, bayesian_test
from shipyard.experiments.stats.frequentist import (
    FrequentistResult,
    frequentist_test,
    two_proportion_test,
)
from shipyard.experiments.stats.multiple import (
    AdjustedPValues,
    adjust_p_values,
    benjamini_hochberg,
    holm,
)
from shipyard.experiments.stats.sequential import DEFAULT_TUNING_N, sequential_rho, sequential_test
from shipyard.experiments.stats.srm import SRM_THRESHOLD, SrmResult, srm_test
from shipyard.experiments.stats.summaries import (
    CupedSummary,
    MeanSummary,
    ProportionSummary,
    RatioSummary,
    Summary,
)

__all__ = [
    "DEFAULT_TUNING_N",
    "SRM_THRESHOLD",
    "AdjustedPValues",
    "BayesianResult",
    "CupedSummary",
    "FrequentistResult",
    "MeanSummary",
    "NormalPrior",
    "ProportionSummary",
    "RatioSummary",
    "SrmResult",
    "Summary",
    "adjust_p_values",
    "bayesian_test",
    "benjamini_hochberg",
    "cuped_theta",
    "frequentist_test",
    "holm",
    "sequential_rho",
    "sequential_test",
    "srm_test",
    "two_proportion_test",
]
