"""Adjusting p-values for several metrics: Holm (FWER) and Benjamini–Hochberg (FDR)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats._estimate import check_alpha

__all__ = ["AdjustedPValues", "adjust_p_values", "benjamini_hochberg", "holm"]

Method = Literal["holm", "bh"]


@dataclass(frozen=True)
class AdjustedPValues:
    """Adjusted p-values in the input order, and which hypotheses are rejected at ``alpha``."""

    method: str
    alpha: float
    p_values: tuple[float, ...]
    adjusted: tuple[float, ...]

    @property
    def rejected(self) -> tuple[bool, ...]:
        """Per hypothesis, whether ``adjusted <= alpha``."""
        return tuple(p <= self.alpha for p in self.adjusted)


def _checked(p_values: Sequence[float]) -> list[float]:
    values = [float(p) for p in p_values]
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in values):
        raise InvalidInputError(f"p-values {values!r} must all lie in [0, 1].",
                                hint="Pass the raw p-values of each metric's test.")
    return values


def _step(p_values: Sequence[float], factor: Callable[[int, int], float], step_down: bool) -> list[float]:
    """Scale sorted p-values by ``factor(rank, m)``, cap at 1, then enforce monotonicity."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    scaled = [min(1.0, factor(rank, m) * p_values[i]) for rank, i in enumerate(order, start=1)]
    if step_down:  # Holm: running maximum from the smallest p-value up
        monotone = list(accumulate(scaled, max))
    else:  # BH: running minimum from the largest p-value down
        monotone = list(accumulate(reversed(scaled), min))[::-1]
    adjusted = [0.0] * m
    for i, value in zip(order, monotone, strict=True):
        adjusted[i] = value
    return adjusted


def holm(p_values: Sequence[float], *, alpha: float = 0.05) -> AdjustedPValues:
    """Holm's step-down: ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))`` (sorted ascending)."""
    check_alpha(alpha)
    values = _checked(p_values)
    adjusted = _step(values, lambda rank, m: m - rank + 1, step_down=True)
    return AdjustedPValues("holm", alpha, tuple(values), tuple(adjusted))


def benjamini_hochberg(p_values: Sequence[float], *, alpha: float = 0.05) -> AdjustedPValues:
    """Benjamini–Hochberg step-up: ``p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)`` (sorted ascending)."""
    check_alpha(alpha)
    values = _checked(p_values)
    adjusted = _step(values, lambda rank, m: m / rank, step_down=False)
    return AdjustedPValues("bh", alpha, tuple(values), tuple(adjusted))


_METHODS: dict[str, Callable[..., AdjustedPValues]] = {"holm": holm, "bh": benjamini_hochberg}


def adjust_p_values(p_values: Sequence[float], *, method: Method = "holm",
                    alpha: float = 0.05) -> AdjustedPValues:
    """Adjust p-values with ``method``: ``"holm"`` (family-wise error) or ``"bh"`` (FDR)."""
    try:
        fn = _METHODS[method]
    except KeyError:
        raise InvalidInputError(f"Unknown adjustment method {method!r}.",
                                hint=f"Use one of {sorted(_METHODS)}.") from None
    return fn(p_values, alpha=alpha)
