"""Data quality of a window against its reference, computed from profiles (or raw frames)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from shipyard.monitoring.profiles import (
    CategoricalProfile,
    ColumnProfile,
    Kind,
    NumericProfile,
    Profile,
    build_profile,
)


@dataclass(frozen=True)
class ColumnQuality:
    """Quality facts for one column of the current window."""

    column: str
    kind: Kind
    n_rows: int
    missing_share: float
    """Nulls and NaN."""
    missing_share_reference: float
    type_violation_share: float
    """Values that are not numbers in a numeric column."""
    infinite_share: float
    out_of_range_share: float | None
    """Numeric: share of values below the reference's minimum or above its maximum."""
    unseen_share: float | None
    """Categorical: share of values outside the reference's vocabulary."""
    is_constant: bool
    """One distinct value (and at least one value)."""


@dataclass(frozen=True)
class QualityReport:
    """Per-column quality of a window."""

    columns: dict[str, ColumnQuality]
    n_rows: int

    @property
    def constant_columns(self) -> list[str]:
        """Columns holding a single distinct value."""
        return [name for name, col in self.columns.items() if col.is_constant]

    def to_frame(self) -> pd.DataFrame:
        """One row per column."""
        rows = [asdict(col) for col in self.columns.values()]
        return pd.DataFrame(rows).set_index("column") if rows else pd.DataFrame()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (non-finite numbers become None)."""
        def clean(value: object) -> object:
            return None if isinstance(value, float) and not np.isfinite(value) else value
        return {"n_rows": self.n_rows,
                "columns": {name: {key: clean(value) for key, value in asdict(col).items()}
                            for name, col in self.columns.items()}}


def _share(count: int, total: int) -> float:
    return count / total if total else float("nan")


def _is_constant(col: ColumnProfile) -> bool:
    if isinstance(col, NumericProfile):
        return col.n_values > 0 and col.minimum == col.maximum
    return int(np.count_nonzero(col.counts[:-1])) == 1 and col.counts[-1] == 0


def _column_quality(name: str, ref: ColumnProfile, cur: ColumnProfile) -> ColumnQuality:
    out_of_range = unseen = None
    invalid = infinite = 0
    if isinstance(cur, NumericProfile):
        invalid, infinite = cur.n_invalid, cur.n_infinite
        if ref.n_values:
            out_of_range = _share(int(cur.counts[0] + cur.counts[-1]), cur.n_values)
    elif isinstance(cur, CategoricalProfile) and isinstance(ref, CategoricalProfile):
        unseen = _share(int(cur.counts[-1]), cur.n_values)
    return ColumnQuality(
        column=name, kind=cur.kind, n_rows=cur.n_rows,
        missing_share=_share(cur.n_missing, cur.n_rows),
        missing_share_reference=_share(ref.n_missing, ref.n_rows),
        type_violation_share=_share(invalid, cur.n_rows), infinite_share=_share(infinite, cur.n_rows),
        out_of_range_share=out_of_range, unseen_share=unseen, is_constant=_is_constant(cur))


def data_quality(reference: pd.DataFrame | Profile, current: pd.DataFrame | Profile,
                 columns: Sequence[str] | None = None,
                 kinds: Mapping[str, str] | None = None) -> QualityReport:
    """Missing share, type violations, out-of-range values, unseen categories, constant columns.

    Give frames, or profiles built on the same reference (``build_profile``).
    """
    ref = reference if isinstance(reference, Profile) else build_profile(
        reference, columns=columns, kinds=kinds)
    cur = current if isinstance(current, Profile) else build_profile(current, reference=ref)
    names = list(columns) if columns is not None else list(ref.columns)
    return QualityReport({name: _column_quality(name, ref.columns[name], cur.columns[name])
                          for name in names}, cur.n_rows)
