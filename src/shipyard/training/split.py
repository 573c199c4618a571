"""Time-based splits: train, validation and test by timestamp, never random across time.

Rows are ordered by timestamp and cut at one or two cutoffs: train holds ts < c1,
validation c1 <= ts < c2 and test ts >= c2, so every row of a split is later than every row
of the split before it, and rows that share a timestamp always land in the same split.

Label leakage: a label often becomes known some time after its event (a chargeback arrives
weeks later). A model trained at the first validation moment could not have seen a label
whose `label_timestamp` is after that cutoff. With `label_timestamp=` set, such training rows
are dropped (`TimeSplit.dropped_late_labels` counts them), so validation scores are what the
model would have scored had it been trained then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError
from shipyard.core.time import to_utc

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitSpec:
    """How to split by time: `fractions` of the rows, or explicit `cutoffs` (not both)."""

    fractions: tuple[float, ...] | None = DEFAULT_FRACTIONS
    cutoffs: tuple[datetime, ...] | None = None
    timestamp: str = "event_timestamp"
    label_timestamp: str | None = None  # drop training rows labelled after the first cutoff

    def apply(self, frame: pd.DataFrame) -> TimeSplit:
        """Split `frame` by this spec."""
        return split_by_time(frame, timestamp=self.timestamp, fractions=self.fractions,
                             cutoffs=self.cutoffs, label_timestamp=self.label_timestamp)

    def to_params(self) -> dict[str, str]:
        """The spec as run params."""
        params = {"split.timestamp": self.timestamp,
                  "split.label_timestamp": self.label_timestamp or ""}
        if self.cutoffs is not None:
            params["split.cutoffs"] = ",".join(c.isoformat() for c in self.cutoffs)
        else:
            params["split.fractions"] = ",".join(f"{f:g}" for f in self.fractions or ())
        return params


@dataclass(frozen=True)
class TimeSplit:
    """Train, validation and test frames (each sorted by time) and the cutoffs between them."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    cutoffs: tuple[datetime, ...]
    dropped_late_labels: int = 0

    @property
    def sizes(self) -> dict[str, int]:
        """Rows per split."""
        return {n: len(getattr(self, n)) for n in _NAMES}


def as_split_spec(split: SplitSpec | Sequence[Any] | None) -> SplitSpec:
    """A SplitSpec from a spec, a sequence of fractions or of cutoff times, or None (default)."""
    if isinstance(split, SplitSpec):
        return split
    if split is None:
        return SplitSpec()
    values = list(split)
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return SplitSpec(fractions=tuple(float(v) for v in values))
    return SplitSpec(fractions=None, cutoffs=tuple(to_utc(v) for v in values))


def split_by_time(frame: pd.DataFrame, *, timestamp: str = "event_timestamp",
                  fractions: Sequence[float] | None = DEFAULT_FRACTIONS,
                  cutoffs: Sequence[datetime | str] | None = None,
                  label_timestamp: str | None = None) -> TimeSplit:
    """Split rows into train/validation/test by `timestamp` (see the module docstring).

    Args:
        frame: the rows, e.g. a training dataset.
        timestamp: the column that orders rows in time.
        fractions: two or three shares of the rows (summing to 1); the cutoffs fall at those
            quantiles of time, moved later past rows that share the boundary timestamp.
        cutoffs: one or two explicit times instead (then `fractions` is ignored).
        label_timestamp: a column with the time each label became known; training rows
            labelled after the first cutoff are dropped (no label leakage).
    """
    times = _times(frame, timestamp)
    order = times.argsort(kind="stable")
    ordered, sorted_times = frame.iloc[order].reset_index(drop=True), times.iloc[order]
    bounds = (_explicit(cutoffs) if cutoffs is not None
              else _from_fractions(sorted_times, fractions))
    positions = [int(sorted_times.searchsorted(b, side="left")) for b in bounds]
    edges = [0, *positions, len(ordered)] + [len(ordered)] * (2 - len(positions))
    parts = [ordered.iloc[edges[i]:edges[i + 1]].reset_index(drop=True) for i in range(3)]
    dropped = 0
    if label_timestamp is not None and bounds:
        labelled = _times(parts[0], label_timestamp)
        late = (labelled > bounds[0]).to_numpy()
        dropped = int(late.sum())
        parts[0] = parts[0][~late].reset_index(drop=True)
    return TimeSplit(parts[0], parts[1], parts[2], cutoffs=tuple(b.to_pydatetime() for b in bounds),
                     dropped_late_labels=dropped)


def _times(frame: pd.DataFrame, column: str) -> pd.Series:
    import pandas as pd

    if column not in frame.columns:
        raise InvalidInputError(f"The frame has no timestamp column {column!r}.",
                                hint=f"Its columns are {list(frame.columns)}; pass timestamp=.")
    series = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(series):
        raise InvalidInputError(f"Column {column!r} holds {series.dtype}, not timestamps.",
                                hint="Convert it with pd.to_datetime(..., utc=True).")
    if series.isna().any():
        raise InvalidInputError(f"Column {column!r} has {int(series.isna().sum())} missing "
                                "timestamps.", hint="Drop or fill those rows before splitting.")
    return series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")


def _explicit(cutoffs: Sequence[datetime | str]) -> list[Any]:
    import pandas as pd

    bounds = [pd.Timestamp(to_utc(c)) for c in cutoffs]
    if not 1 <= len(bounds) <= 2 or bounds != sorted(bounds):
        raise InvalidInputError(f"cutoffs {list(cutoffs)!r} must be one or two increasing times.",
                                hint="e.g. cutoffs=['2026-03-01', '2026-03-15'].")
    return bounds


def _from_fractions(times: pd.Series, fractions: Sequence[float] | None) -> list[Any]:
    shares = list(fractions or ())
    if not 2 <= len(shares) <= 3 or any(f < 0 for f in shares) or abs(sum(shares) - 1) > 1e-6:
        raise InvalidInputError(f"fractions {shares!r} must be 2 or 3 shares summing to 1.",
                                hint="e.g. fractions=(0.7, 0.15, 0.15) or (0.8, 0.2).")
    if times.empty:
        raise InvalidInputError("Cannot split an empty frame.", hint="Pass some rows.")
    bounds, total = [], 0.0
    for share in shares[:-1]:
        total += share
        at = min(int(round(total * len(times))), len(times) - 1)
        bounds.append(times.iloc[at])  # rows at this time all go to the later split
    return bounds
