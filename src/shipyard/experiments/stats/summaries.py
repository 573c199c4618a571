"""Per-arm sufficient statistics: all an experiment analysis needs from each variant.

Summaries add up (``day1 + day2``), so they can be kept per day or per segment and pooled.
Conventions follow GrowthBook's stats engine (gbstats): sample variances divide by ``n - 1``,
except for a proportion, whose per-unit variance is the binomial ``p (1 - p)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.errors import InvalidInputError

__all__ = ["CupedSummary", "MeanSummary", "ProportionSummary", "RatioSummary", "Summary"]


def _as_array(values: ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise InvalidInputError(
            f"{what} must be a one-dimensional sequence of finite numbers.",
            hint="Drop or impute missing values (NaN) before summarizing.",
        )
    return array


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InvalidInputError(f"A unit count must be a non-negative integer, not {n!r}.",
                                hint="Pass the number of units (users, sessions) in the arm.")


def _covariance(n: int, sum_x: float, sum_y: float, cross_sum: float) -> float:
    """Sample covariance from sums: ``(Σxy - Σx Σy / n) / (n - 1)``; 0 for ``n <= 1``."""
    if n <= 1:
        return 0.0
    return (cross_sum - sum_x * sum_y / n) / (n - 1)


class _Additive:
    """Summaries of disjoint sets of units add field by field."""

    def __add__(self, other: Any) -> Self:
        if type(other) is not type(self):
            return NotImplemented
        return type(self)(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                             for f in fields(self)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class MeanSummary(_Additive):
    """A continuous metric: unit count ``n``, ``sum`` and ``sum_squares`` of the values."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        _check_count(self.n)

    @classmethod
    def from_values(cls, values: ArrayLike) -> MeanSummary:
        """Summarize one value per unit."""
        x = _as_array(values, "Metric values")
        return cls(n=len(x), sum=float(x.sum()), sum_squares=float(x @ x))

    @property
    def mean(self) -> float:
        """``sum / n`` (0 when empty)."""
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Sample variance ``(Σx² - (Σx)² / n) / (n - 1)`` (0 for ``n <= 1``)."""
        return _covariance(self.n, self.sum, self.sum, self.sum_squares)


@dataclass(frozen=True)
class ProportionSummary(_Additive):
    """A conversion metric: unit count ``n`` and the number of ``conversions``."""

    n: int
    conversions: float

    def __post_init__(self) -> None:
        _check_count(self.n)
        if not 0 <= self.conversions <= self.n:
            raise InvalidInputError(
                f"Conversions {self.conversions!r} must lie between 0 and n={self.n}.",
                hint="Count each unit at most once; use MeanSummary for counts per unit.",
            )

    @classmethod
    def from_values(cls, values: ArrayLike) -> ProportionSummary:
        """Summarize one 0/1 outcome per unit."""
        x = _as_array(values, "Conversion flags")
        if not np.all((x == 0) | (x == 1)):
            raise InvalidInputError("Conversion flags must be 0 or 1.",
                                    hint="Use MeanSummary.from_values for non-binary outcomes.")
        return cls(n=len(x), conversions=float(x.sum()))

    @property
    def sum(self) -> float:
        """The number of conversions."""
        return self.conversions

    @property
    def sum_squares(self) -> float:
        """Equal to ``sum`` for 0/1 outcomes."""
        return self.conversions

    @property
    def mean(self) -> float:
        """The conversion rate ``p = conversions / n`` (0 when empty)."""
        return self.conversions / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Binomial per-unit variance ``p (1 - p)``."""
        return self.mean * (1.0 - self.mean)


Component = MeanSummary | ProportionSummary


def _check_pair(first: Component, second: Component, cross_sum: float, names: str) -> None:
    if first.n != second.n:
        raise InvalidInputError(
            f"The {names} summaries count different units ({first.n} and {second.n}).",
            hint="Summarize both over the same units (use 0 where a unit has no value).",
        )
    if not math.isfinite(cross_sum):
        raise InvalidInputError(f"The cross sum {cross_sum!r} is not finite.",
                                hint="Check the inputs for NaN or infinite values.")


def _component(values: ArrayLike, binary: bool) -> Component:
    return ProportionSummary.from_values(values) if binary else MeanSummary.from_values(values)


@dataclass(frozen=True)
class RatioSummary(_Additive):
    """A ratio metric Σm / Σd: numerator and denominator summaries and the cross sum Σ m·d."""

    numerator: Component
    denominator: Component
    cross_sum: float

    def __post_init__(self) -> None:
        _check_pair(self.numerator, self.denominator, self.cross_sum, "numerator and denominator")

    @classmethod
    def from_values(cls, numerator: ArrayLike, denominator: ArrayLike, *,
                    binary_numerator: bool = False) -> RatioSummary:
        """Summarize one (numerator, denominator) pair per unit."""
        m = _as_array(numerator, "Numerator values")
        d = _as_array(denominator, "Denominator values")
        return cls(_component(m, binary_numerator), MeanSummary.from_values(d),
                   float(m @ d) if len(m) == len(d) else math.nan)

    @property
    def n(self) -> int:
        """The number of units."""
        return self.numerator.n

    @property
    def mean(self) -> float:
        """The ratio ``Σm / Σd`` (0 when ``Σd = 0``)."""
        return self.numerator.sum / self.denominator.sum if self.denominator.sum else 0.0

    @property
    def covariance(self) -> float:
        """Sample covariance of numerator and denominator, ``(Σmd - Σm Σd / n) / (n - 1)``."""
        return _covariance(self.n, self.numerator.sum, self.denominator.sum, self.cross_sum)

    @property
    def variance(self) -> float:
        """Delta-method per-unit variance of the ratio.

        ``σ²_m / μ_d² - 2 cov(m, d) μ_m / μ_d³ + μ_m² σ²_d / μ_d⁴`` (0 when ``μ_d = 0``).
        """
        mu_m, mu_d = self.numerator.mean, self.denominator.mean
        if mu_d == 0 or self.n <= 1:
            return 0.0
        return (self.numerator.variance / mu_d**2
                - 2 * self.covariance * mu_m / mu_d**3
                + mu_m**2 * self.denominator.variance / mu_d**4)


@dataclass(frozen=True)
class CupedSummary(_Additive):
    """A metric with a pre-period covariate (CUPED): both summaries and the cross sum Σ y·x."""

    metric: Component
    covariate: Component
    cross_sum: float

    def __post_init__(self) -> None:
        _check_pair(self.metric, self.covariate, self.cross_sum, "metric and covariate")

    @classmethod
    def from_values(cls, metric: ArrayLike, covariate: ArrayLike, *,
                    binary: bool = False) -> CupedSummary:
        """Summarize one (metric, covariate) pair per unit; ``binary`` for 0/1 outcomes."""
        y = _as_array(metric, "Metric values")
        x = _as_array(covariate, "Covariate values")
        return cls(_component(y, binary), _component(x, binary),
                   float(y @ x) if len(y) == len(x) else math.nan)

    @property
    def n(self) -> int:
        """The number of units."""
        return self.metric.n

    @property
    def mean(self) -> float:
        """The unadjusted metric mean."""
        return self.metric.mean

    @property
    def variance(self) -> float:
        """The unadjusted per-unit metric variance."""
        return self.metric.variance

    @property
    def covariance(self) -> float:
        """Sample covariance of metric and covariate."""
        return _covariance(self.n, self.metric.sum, self.covariate.sum, self.cross_sum)


Summary = MeanSummary | ProportionSummary | RatioSummary | CupedSummary
