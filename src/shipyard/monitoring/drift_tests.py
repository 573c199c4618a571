"""The drift tests: one small function per statistic, on count vectors or numeric samples.

Count tests (chi-square, Jensen-Shannon, PSI, KL) take the reference and current count
vectors of the same slots (categories, or bins of a numeric column) and are exact whether
the counts come from raw rows or from merged profiles.

The numeric tests (Kolmogorov-Smirnov, Wasserstein) are exact on raw values when the raw
values are at hand (``NumericSample.*_values``); otherwise they use the binned CDFs and the
per-bin sums of the values. Both binned figures never exceed the exact ones. On 200
reference-quantile bins the normed Wasserstein distance is exact wherever the two CDFs do not
cross inside a bin, and otherwise within 1% + 0.001 below; the KS statistic is at most one
bin's mass (~0.5%) below. The unit tests pin both down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shipyard.monitoring.binning import coarsen
from shipyard.monitoring.profiles import NumericProfile

STD_FLOOR = 0.001
"""Wasserstein is normed by the reference std, floored (as Evidently does) for constant columns."""
PROPORTION_FLOOR = 1e-4
"""PSI and KL replace an empty slot's share by this, so that a new slot gives a finite score."""


@dataclass(frozen=True)
class TestResult:
    """What one test found: its statistic (or distance), p-value and effect size."""

    statistic: float
    p_value: float | None = None
    effect_size: float | None = None
    """Beside every p-value: normed Wasserstein for KS, Cramér's V for chi-square."""


@dataclass(frozen=True)
class NumericSample:
    """A numeric column in both windows: profiles, and sorted finite values when exact tests apply."""

    reference: NumericProfile
    current: NumericProfile
    reference_values: np.ndarray | None = None
    current_values: np.ndarray | None = None

    @property
    def is_exact(self) -> bool:
        """True when the raw values are at hand."""
        return self.reference_values is not None and self.current_values is not None


# scipy.stats is imported inside the tests that need it: it costs ~60 MB and 0.5 s, and the
# large-sample defaults (Wasserstein, Jensen-Shannon, the missing-share test) do without it.


def chi2_test(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Two-sample chi-square test of homogeneity on the 2 x k contingency table."""
    from scipy import stats

    table = np.vstack((reference, current)).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return TestResult(0.0, 1.0, 0.0)
    result = stats.chi2_contingency(table)
    chi2, p_value = float(result.statistic), float(result.pvalue)
    return TestResult(chi2, p_value, float(np.sqrt(chi2 / table.sum())))


def _relative_entropy(p: np.ndarray, q: np.ndarray) -> float:
    """Sum of p * ln(p / q) over p > 0 (scipy's rel_entr summed)."""
    positive = p > 0
    return float(np.sum(p[positive] * np.log(p[positive] / q[positive])))


def jensenshannon_distance(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Jensen-Shannon distance (natural log, so in [0, sqrt(ln 2)]), as scipy defines it."""
    p, q = reference / reference.sum(), current / current.sum()
    middle = (p + q) / 2
    divergence = _relative_entropy(p, middle) + _relative_entropy(q, middle)
    return TestResult(math.sqrt(max(divergence / 2, 0.0)))


def _floored_shares(counts: np.ndarray) -> np.ndarray:
    shares = counts / counts.sum()
    return np.where(shares == 0, PROPORTION_FLOOR, shares)


def psi(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Population stability index: sum of (cur - ref) * ln(cur / ref) over shares."""
    p, q = _floored_shares(reference), _floored_shares(current)
    return TestResult(float(np.sum((q - p) * np.log(q / p))))


def kl_divergence(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Kullback-Leibler divergence KL(reference || current), natural log."""
    p, q = _floored_shares(reference), _floored_shares(current)
    return TestResult(_relative_entropy(p / p.sum(), q / q.sum()))


def _cdf_gaps(sample: NumericSample) -> np.ndarray:
    """Reference minus current CDF at each bin edge."""
    ref, cur = sample.reference, sample.current
    return (np.cumsum(ref.counts)[:-1] / ref.n_values) - (np.cumsum(cur.counts)[:-1] / cur.n_values)


def _cdf_integrals(profile: NumericProfile) -> np.ndarray:
    """Per slot: the integral of the CDF over the bin (of 1 - CDF for the overflow), exact."""
    edges, counts, sums, n = profile.edges, profile.counts, profile.slot_sums, profile.n_values
    cdf_before = (np.cumsum(counts) - counts)[1:-1] / n
    # Over [a, b): integral of F = F(a) (b - a) + sum over the bin's values of (b - x) / n.
    inner = cdf_before * np.diff(edges) + (counts[1:-1] * edges[1:] - sums[1:-1]) / n
    below = (counts[0] * edges[0] - sums[0]) / n
    above = (sums[-1] - counts[-1] * edges[-1]) / n
    return np.concatenate(([below], inner, [-above]))


def _wasserstein_raw(sample: NumericSample) -> float:
    if sample.is_exact:
        from scipy import stats

        return float(stats.wasserstein_distance(sample.reference_values, sample.current_values))
    # Sum over slots of |integral of (F - G)|: exact wherever F - G keeps its sign in a slot,
    # a slight underestimate where the two CDFs cross inside one.
    difference = _cdf_integrals(sample.reference) - _cdf_integrals(sample.current)
    return float(np.abs(difference).sum())


def wasserstein_normed(sample: NumericSample) -> TestResult:
    """Wasserstein-1 distance divided by the reference standard deviation."""
    return TestResult(_wasserstein_raw(sample) / max(sample.reference.std, STD_FLOOR))


def ks_test(sample: NumericSample) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test; effect size: normed Wasserstein distance."""
    from scipy import stats

    effect = wasserstein_normed(sample).statistic
    if sample.is_exact:
        result = stats.ks_2samp(sample.reference_values, sample.current_values)
        return TestResult(float(result.statistic), float(result.pvalue), effect)
    n, m = sample.reference.n_values, sample.current.n_values
    statistic = float(np.abs(_cdf_gaps(sample)).max())
    # scipy's large-sample rule for ks_2samp: the one-sample law at the effective size.
    p_value = float(stats.kstwo.sf(statistic, np.round(n * m / (n + m))))
    return TestResult(statistic, min(max(p_value, 0.0), 1.0), effect)


CountTest = Callable[[np.ndarray, np.ndarray], TestResult]
NumericTest = Callable[[NumericSample], TestResult]


def two_proportion_test(hits_a: int, n_a: int, hits_b: int, n_b: int) -> TestResult:
    """Two-sided z-test that two shares are equal; effect size: Cohen's h (b minus a)."""
    share_a, share_b = hits_a / n_a, hits_b / n_b
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (share_b - share_a) / spread if spread > 0 else 0.0
    h = 2 * math.asin(math.sqrt(share_b)) - 2 * math.asin(math.sqrt(share_a))
    return TestResult(z, math.erfc(abs(z) / math.sqrt(2)), h)


def nonempty_slots(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the slots empty in both windows (they would only shift the PSI/KL floors)."""
    keep = (reference + current) > 0
    return reference[keep], current[keep]


def on_deciles(test: CountTest) -> NumericTest:
    """A count test applied to a numeric column's reference-decile bins."""
    def run(sample: NumericSample) -> TestResult:
        return test(*nonempty_slots(*coarsen(sample.reference.counts, sample.current.counts)))
    return run


@dataclass(frozen=True)
class DriftMethod:
    """A named test: its default threshold and how it runs on each kind of column."""

    name: str
    threshold: float
    uses_p_value: bool
    """True: drift when p-value < threshold; False: drift when the distance >= threshold."""
    numeric: NumericTest | None
    categorical: CountTest | None

    def is_drift(self, result: TestResult, threshold: float) -> bool:
        """Whether the result crosses the threshold."""
        if self.uses_p_value:
            return result.p_value is not None and result.p_value < threshold
        return result.statistic >= threshold


METHODS: dict[str, DriftMethod] = {
    "ks": DriftMethod("ks", 0.05, True, ks_test, None),
    "chi2": DriftMethod("chi2", 0.05, True, on_deciles(chi2_test), chi2_test),
    "wasserstein": DriftMethod("wasserstein", 0.1, False, wasserstein_normed, None),
    "jensenshannon": DriftMethod("jensenshannon", 0.1, False, on_deciles(jensenshannon_distance),
                                 jensenshannon_distance),
    "psi": DriftMethod("psi", 0.1, False, on_deciles(psi), psi),
    "kl": DriftMethod("kl", 0.1, False, on_deciles(kl_divergence), kl_divergence),
}
