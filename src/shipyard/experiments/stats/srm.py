"""Sample-ratio mismatch: does the observed split of units match the configured weights?"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import special

from shipyard.core.errors import InvalidInputError

__all__ = ["SRM_THRESHOLD", "SrmResult", "srm_test"]

SRM_THRESHOLD = 0.001  # GrowthBook flags a mismatch below this p-value


@dataclass(frozen=True)
class SrmResult:
    """Pearson's chi-square of observed against expected unit counts per variant."""

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    dof: int
    p_value: float
    threshold: float

    @property
    def srm_detected(self) -> bool:
        """Whether ``p_value < threshold``: assignment looks broken, block any decision."""
        return self.p_value < self.threshold


def srm_test(counts: Sequence[int], weights: Sequence[float] | None = None, *,
             threshold: float = SRM_THRESHOLD) -> SrmResult:
    """Chi-square goodness of fit of the unit counts to the weights (equal when omitted).

    ``E_i = N w_i / Σw``, ``χ² = Σ (O_i − E_i)² / E_i`` with ``k − 1`` degrees of freedom and
    ``p = P(χ²_{k−1} ≥ χ²)``; no units at all gives ``p = 1``.
    """
    if not all(float(c).is_integer() for c in counts):
        raise InvalidInputError(f"Counts {list(counts)!r} must be whole numbers of units.",
                                hint="Pass the number of units assigned to each variant.")
    observed = tuple(int(c) for c in counts)
    k = len(observed)
    shares = [1.0] * k if weights is None else [float(w) for w in weights]
    if k < 2 or len(shares) != k:
        raise InvalidInputError(
            f"SRM needs one count per variant and at least 2 variants, got counts {list(observed)!r} "
            f"and weights {None if weights is None else list(weights)!r}.",
            hint="Pass counts=[n_control, n_treatment, ...] and the same number of weights.",
        )
    if any(c < 0 for c in observed) or not all(math.isfinite(w) and w > 0 for w in shares):
        raise InvalidInputError(
            f"Counts {list(observed)!r} must be non-negative and weights {shares!r} positive.",
            hint="Leave variants with zero weight out of the SRM check.",
        )
    if not 0 < threshold < 1:
        raise InvalidInputError(f"threshold {threshold!r} must lie strictly between 0 and 1.",
                                hint=f"GrowthBook uses {SRM_THRESHOLD}.")
    total, weight_sum = sum(observed), sum(shares)
    expected = tuple(total * w / weight_sum for w in shares)
    if total == 0:
        return SrmResult(observed, expected, 0.0, k - 1, 1.0, threshold)
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    p_value = float(special.chdtrc(k - 1, chi2))
    return SrmResult(observed, expected, chi2, k - 1, p_value, threshold)
