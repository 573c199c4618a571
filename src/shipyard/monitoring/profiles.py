"""Mergeable per-window column profiles on bins fixed by a reference.

A reference profile fixes, per column, the bins (numeric: quantile edges of the reference)
or the vocabulary (categorical: its ``max_categories`` most frequent values). Every later
window is counted on exactly those bins with ``build_profile(frame, reference=ref)``, so
window profiles add up: an hour's profile merges into a day's with no loss, and the merged
profile equals the one built from the day's raw rows (moments up to float rounding).

Drift computed from profiles (``drift_from_profiles``) is exact for the count tests
(chi-square, Jensen-Shannon, PSI, KL) and, for numeric columns, approximates the raw-data
Kolmogorov-Smirnov and Wasserstein figures from the binned CDFs (see ``drift_tests``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.binning import (
    DEFAULT_BINS,
    quantile_edges,
    sorted_counts,
    sorted_finite,
    sorted_sums,
    sum_squared_deviations,
)

Kind = Literal["numeric", "categorical"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical")
MAX_CATEGORIES = 1000
"""Vocabulary size of a reference profile; rarer values are counted as "other"."""
PARALLEL_MIN_ROWS = 50_000
MAX_THREADS = 4


def _json_float(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _from_json_float(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _require_same(what: str, left: object, right: object, same: bool) -> None:
    if not same:
        raise InvalidInputError(
            f"Cannot merge profiles built on different {what}: {left!r} vs {right!r}.",
            hint="Build every window with build_profile(frame, reference=<one reference profile>).")


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """One numeric column of one window: counts on the reference's bins, and moments."""

    edges: np.ndarray
    counts: np.ndarray
    """Underflow, one count per bin ``[edges[i], edges[i+1])``, overflow."""
    n_rows: int
    n_missing: int = 0
    """Nulls and NaN."""
    n_infinite: int = 0
    n_invalid: int = 0
    """Values that are not numbers (a string in a numeric column)."""
    mean: float = float("nan")
    m2: float = 0.0
    """Sum of squared deviations from the mean (merged with Chan's formula)."""
    minimum: float = float("nan")
    maximum: float = float("nan")
    sums: np.ndarray | None = None
    """Sum of the values in each slot (like ``counts``): with it the integral of the CDF over
    each bin is exact, which makes the binned Wasserstein distance nearly exact."""
    kind: ClassVar[Kind] = "numeric"

    @property
    def n_values(self) -> int:
        """Finite values counted in the bins."""
        return int(self.counts.sum())

    @property
    def slot_sums(self) -> np.ndarray:
        """Per-slot sums of the values (zeros when the profile has none)."""
        return np.zeros(self.counts.size) if self.sums is None else self.sums

    @property
    def std(self) -> float:
        """Population standard deviation of the finite values."""
        return float(np.sqrt(self.m2 / self.n_values)) if self.n_values else float("nan")

    def merge(self, other: NumericProfile) -> NumericProfile:
        """The profile of both windows together."""
        _require_same("bins", self.edges.size, other.edges.size,
                      np.array_equal(self.edges, other.edges))
        n_a, n_b = self.n_values, other.n_values
        n = n_a + n_b
        if n_a == 0 or n_b == 0:
            mean, m2 = (self.mean, self.m2) if n_b == 0 else (other.mean, other.m2)
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * n_b / n
            m2 = self.m2 + other.m2 + delta * delta * n_a * n_b / n
        return NumericProfile(
            self.edges, self.counts + other.counts, self.n_rows + other.n_rows,
            self.n_missing + other.n_missing, self.n_infinite + other.n_infinite,
            self.n_invalid + other.n_invalid, mean, m2,
            float(np.fmin(self.minimum, other.minimum)), float(np.fmax(self.maximum, other.maximum)),
            self.slot_sums + other.slot_sums)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"kind": self.kind, "edges": self.edges.tolist(), "counts": self.counts.tolist(),
                "n_rows": self.n_rows, "n_missing": self.n_missing, "n_infinite": self.n_infinite,
                "n_invalid": self.n_invalid, "mean": _json_float(self.mean), "m2": self.m2,
                "minimum": _json_float(self.minimum), "maximum": _json_float(self.maximum),
                "sums": self.slot_sums.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        """Inverse of ``to_dict``."""
        return cls(np.asarray(data["edges"], dtype=np.float64),
                   np.asarray(data["counts"], dtype=np.int64), int(data["n_rows"]),
                   int(data["n_missing"]), int(data["n_infinite"]), int(data["n_invalid"]),
                   _from_json_float(data["mean"]), float(data["m2"]),
                   _from_json_float(data["minimum"]), _from_json_float(data["maximum"]),
                   np.asarray(data["sums"], dtype=np.float64))


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """One categorical column of one window: counts of the reference's vocabulary and "other"."""

    categories: tuple[str, ...]
    counts: np.ndarray
    """One count per category, then the count of all other values."""
    n_rows: int
    n_missing: int = 0
    kind: ClassVar[Kind] = "categorical"

    @property
    def n_values(self) -> int:
        """Non-null values."""
        return int(self.counts.sum())

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        """The profile of both windows together."""
        _require_same("vocabularies", len(self.categories), len(other.categories),
                      self.categories == other.categories)
        return CategoricalProfile(self.categories, self.counts + other.counts,
                                  self.n_rows + other.n_rows, self.n_missing + other.n_missing)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"kind": self.kind, "categories": list(self.categories),
                "counts": self.counts.tolist(), "n_rows": self.n_rows, "n_missing": self.n_missing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        """Inverse of ``to_dict``."""
        return cls(tuple(data["categories"]), np.asarray(data["counts"], dtype=np.int64),
                   int(data["n_rows"]), int(data["n_missing"]))


ColumnProfile = NumericProfile | CategoricalProfile
_PROFILE_TYPES: dict[str, type[NumericProfile] | type[CategoricalProfile]] = {
    "numeric": NumericProfile, "categorical": CategoricalProfile}


@dataclass(frozen=True)
class Profile:
    """Column profiles of one window of rows; merge windows with ``merge``."""

    n_rows: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    def merge(self, other: Profile) -> Profile:
        """The profile of both windows together (same reference, same columns)."""
        _require_same("columns", list(self.columns), list(other.columns),
                      list(self.columns) == list(other.columns))
        merged = {name: col.merge(other.columns[name])  # type: ignore[arg-type]
                  for name, col in self.columns.items()}
        return Profile(self.n_rows + other.n_rows, merged)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the metadata store)."""
        return {"n_rows": self.n_rows,
                "columns": {name: col.to_dict() for name, col in self.columns.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Inverse of ``to_dict``."""
        columns = {name: _PROFILE_TYPES[col["kind"]].from_dict(col)
                   for name, col in data["columns"].items()}
        return cls(int(data["n_rows"]), columns)


def merge_profiles(profiles: Iterable[Profile]) -> Profile:
    """Merge several window profiles (e.g. 24 hourly ones into a day)."""
    merged: Profile | None = None
    for item in profiles:
        merged = item if merged is None else merged.merge(item)
    if merged is None:
        raise InvalidInputError("No profiles to merge.", hint="Pass at least one profile.")
    return merged


def infer_kind(series: pd.Series) -> Kind:
    """Numeric for int and float dtypes, categorical for everything else (bool, str, object)."""
    dtype = series.dtype
    is_number = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return "numeric" if is_number else "categorical"


def resolve_kinds(frame: pd.DataFrame, columns: Sequence[str],
                  kinds: Mapping[str, str] | None) -> dict[str, Kind]:
    """Each column's kind: the override when given, else inferred from the dtype."""
    overrides = dict(kinds or {})
    for name, kind in overrides.items():
        if kind not in KINDS:
            raise InvalidInputError(f"Unknown kind {kind!r} for column {name!r}.",
                                    hint=f"Use one of {list(KINDS)}.")
    return {name: overrides.get(name) or infer_kind(frame[name]) for name in columns}  # type: ignore[misc]


def numeric_values(series: pd.Series) -> tuple[np.ndarray, int]:
    """Float values (NaN for nulls) and the number of values that are not numbers."""
    if series.dtype == np.float64:
        return series.to_numpy(), 0  # no copy
    if infer_kind(series) == "numeric":
        return series.to_numpy(dtype=np.float64, na_value=np.nan), 0
    as_objects = series.astype(object)
    coerced = pd.to_numeric(as_objects, errors="coerce")
    n_invalid = int(coerced.isna().sum() - as_objects.isna().sum())
    return np.asarray(coerced, dtype=np.float64), n_invalid


def category_counts(series: pd.Series) -> pd.Series:
    """Counts of non-null values keyed by their string form, most frequent first."""
    try:
        counts = series.value_counts(dropna=True, sort=False)
    except TypeError:  # unhashable values (lists, dicts): count their string forms
        counts = series[series.notna()].map(str).value_counts(sort=False)
    counts = counts[counts > 0]
    keys = counts.index.map(str)
    counts = pd.Series(counts.to_numpy(dtype=np.int64), index=keys)
    if not keys.is_unique:  # 1 and "1" are one category
        counts = counts.groupby(level=0).sum()
    order = np.lexsort((counts.index.to_numpy(dtype=object).astype(str), -counts.to_numpy()))
    return counts.iloc[order]


def profile_numeric(values: np.ndarray, n_invalid: int, like: NumericProfile | None,
                    n_bins: int = DEFAULT_BINS, scratch: np.ndarray | None = None,
                    ) -> tuple[NumericProfile, np.ndarray]:
    """A numeric column's profile and its sorted finite values (in ``scratch`` when given)."""
    ordered, n_missing = sorted_finite(values, scratch)
    n_infinite = values.size - ordered.size - n_missing
    edges = quantile_edges(ordered, n_bins) if like is None else like.edges
    counts = sorted_counts(ordered, edges)
    mean = float(ordered.mean()) if ordered.size else float("nan")
    profile = NumericProfile(
        edges, counts, int(values.size), n_missing - n_invalid, n_infinite, n_invalid, mean=mean,
        m2=sum_squared_deviations(ordered, mean) if ordered.size else 0.0,
        minimum=float(ordered[0]) if ordered.size else float("nan"),
        maximum=float(ordered[-1]) if ordered.size else float("nan"),
        sums=sorted_sums(ordered, counts))
    return profile, ordered


def profile_categorical(series: pd.Series, like: CategoricalProfile | None,
                        max_categories: int = MAX_CATEGORIES) -> CategoricalProfile:
    """A categorical column's profile on the reference's vocabulary (or its own top values)."""
    counts = category_counts(series)
    total = int(counts.sum())
    if like is None:
        kept = counts.iloc[:max_categories]
        categories = tuple(kept.index)
        values = kept.to_numpy()
    else:
        categories = like.categories
        values = counts.reindex(list(categories), fill_value=0).to_numpy(dtype=np.int64)
    vector = np.append(values, total - int(values.sum())).astype(np.int64)
    return CategoricalProfile(categories, vector, int(series.size), int(series.size) - total)


def empty_column(like: ColumnProfile, n_rows: int) -> ColumnProfile:
    """The profile of a column absent from a window: every row missing."""
    if isinstance(like, NumericProfile):
        return NumericProfile(like.edges, np.zeros_like(like.counts), n_rows, n_missing=n_rows)
    return CategoricalProfile(like.categories, np.zeros_like(like.counts), n_rows, n_rows)


def _profile_column(name: str, series: pd.Series | None, n_rows: int, kind: Kind,
                    like: ColumnProfile | None, n_bins: int, max_categories: int,
                    scratch: np.ndarray) -> tuple[ColumnProfile, np.ndarray | None]:
    if series is None:
        if like is None:
            raise InvalidInputError(f"Column {name!r} is not in the frame.",
                                    hint="Profile a frame that has it, or pass a reference profile.")
        return empty_column(like, n_rows), None
    if kind == "numeric":
        values, n_invalid = numeric_values(series)
        numeric_like = like if isinstance(like, NumericProfile) else None
        return profile_numeric(values, n_invalid, numeric_like, n_bins, scratch)
    categorical_like = like if isinstance(like, CategoricalProfile) else None
    return profile_categorical(series, categorical_like, max_categories), None


def profile_frame(frame: pd.DataFrame, kinds: Mapping[str, Kind],
                  reference: Profile | None = None, *, n_bins: int = DEFAULT_BINS,
                  max_categories: int = MAX_CATEGORIES, keep_values: bool = False,
                  ) -> tuple[Profile, dict[str, np.ndarray]]:
    """Profile the given columns; with ``keep_values`` also return sorted finite numerics.

    Columns are profiled in threads on large frames: numpy's sort releases the GIL (on two
    idle cores, sorting eight 1M-value columns takes 0.22 s in two threads, 0.37 s in one).
    """
    def run(name: str) -> tuple[ColumnProfile, np.ndarray | None]:
        like = None if reference is None else reference.columns[name]
        scratch = buffers.get()
        try:
            profile, ordered = _profile_column(name, series[name], len(frame), kinds[name], like,
                                               n_bins, max_categories, scratch)
            return profile, None if ordered is None or not keep_values else ordered.copy()
        finally:
            buffers.put(scratch)

    series = {name: frame[name] if name in frame.columns else None for name in kinds}
    workers = min(MAX_THREADS, os.cpu_count() or 1) if len(frame) >= PARALLEL_MIN_ROWS else 1
    # One sort buffer per worker, reused column after column.
    buffers: SimpleQueue[np.ndarray] = SimpleQueue()
    for _ in range(workers):
        buffers.put(np.empty(len(frame)))
    if workers > 1 and len(kinds) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(run, kinds))
    else:
        results = [run(name) for name in kinds]
    columns = {name: result[0] for name, result in zip(kinds, results, strict=True)}
    kept = {name: result[1] for name, result in zip(kinds, results, strict=True)
            if result[1] is not None}
    return Profile(len(frame), columns), kept


def build_profile(frame: pd.DataFrame, *, reference: Profile | None = None,
                  columns: Sequence[str] | None = None, kinds: Mapping[str, str] | None = None,
                  n_bins: int = DEFAULT_BINS, max_categories: int = MAX_CATEGORIES) -> Profile:
    """Profile a window; pass the reference profile so that windows share bins and merge.

    Without ``reference`` the frame *is* the reference: it fixes ``n_bins`` quantile bins per
    numeric column and a vocabulary of ``max_categories`` values per categorical one.
    """
    if reference is not None:
        ref_kinds = {name: col.kind for name, col in reference.columns.items()}
        return profile_frame(frame, ref_kinds, reference)[0]
    names = select_columns(frame, columns)
    return profile_frame(frame, resolve_kinds(frame, names, kinds), n_bins=n_bins,
                         max_categories=max_categories)[0]


def select_columns(frame: pd.DataFrame, columns: Sequence[str] | None) -> list[str]:
    """The requested columns, checked against the frame (default: all of them)."""
    if columns is None:
        return list(frame.columns)
    unknown = [name for name in columns if name not in frame.columns]
    if unknown:
        raise InvalidInputError(f"Columns {unknown!r} are not in the reference data.",
                                hint=f"Known columns: {list(frame.columns)!r}.")
    return list(columns)
