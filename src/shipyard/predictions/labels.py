"""The label log: ground truth that arrives after the prediction, joined back to the log.

A label is keyed by the prediction's request id, or by entity keys plus the prediction's
timestamp. Labels may come days late and more than once: every call appends one Parquet
file (written to a temporary name, fsynced, then renamed, so an accepted call survives a
crash), and when several labels share a key the one logged last wins. A request id labels
every row of that request (a request with several entities shares one id).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.core.errors import InvalidInputError
from shipyard.predictions.compaction import write_durably

COMPACT_AFTER_FILES = 16
"""More label files than this are merged into one on the next write (reads stay cheap)."""
LABEL_COLUMNS = ("logged_at_us", "seq", "request_id", "keys", "key", "timestamp_us", "label")
_HINT = ("Pass a frame with `request_id` and a label column, or entity key columns (keys=[...]) "
         "plus the prediction's `timestamp`.")


def _key_text(value: object) -> str:
    """One key value as text, so that 7, 7.0 and "7" join alike."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def column_text(series: pd.Series) -> pd.Series:
    """A key column as text, so that 7, 7.0 and "7" join alike (vectorised where it can be)."""
    if pd.api.types.is_integer_dtype(series.dtype) and not series.isna().any():
        return series.astype(np.int64).astype(str)
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64)
        if np.isfinite(values).all() and (values == np.round(values)).all():
            return pd.Series(values.astype(np.int64), index=series.index).astype(str)
    return series.map(_key_text).astype(str)


_column_text = column_text  # the former private name


def key_strings(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """The composite key of each row as one text (values joined by a unit separator)."""
    parts = [column_text(frame[k]).astype(object) for k in keys]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "\x1f" + part
    return joined.astype(object)


def timestamps_us(values: pd.Series) -> pd.Series:
    """Timestamps (naive ones are UTC) as integer microseconds since the epoch."""
    try:
        stamps = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"Label timestamps could not be read as times: {exc}",
                                hint="Use timezone-aware datetimes (naive ones are UTC).") from exc
    if stamps.isna().any():
        raise InvalidInputError("Some labels have no timestamp.", hint=_HINT)
    return stamps.astype("datetime64[us, UTC]").astype("int64")


def _label_values(series: pd.Series) -> pd.Series:
    if series.isna().any():
        raise InvalidInputError(f"{int(series.isna().sum())} labels are missing.",
                                hint="Drop rows without a label before logging them.")
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(np.float64)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype(np.float64)
    return series.astype(str)


def label_rows(frame: pd.DataFrame, *, label: str, keys: Sequence[str] | None,
               timestamp: str) -> pd.DataFrame:
    """Validate a frame of labels and return it in the log's columns (without logged_at/seq)."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"Labels must be a pandas DataFrame, not {type(frame).__name__}.",
                                hint=_HINT)
    if label not in frame.columns:
        raise InvalidInputError(f"The labels have no column {label!r}.",
                                hint=f"Columns: {list(frame.columns)!r}; pass label=<column>.")
    out = pd.DataFrame(index=frame.index)
    if keys:
        missing = [k for k in [*keys, timestamp] if k not in frame.columns]
        if missing:
            raise InvalidInputError(f"The labels lack columns {missing!r}.", hint=_HINT)
        if frame[list(keys)].isna().any().any():
            raise InvalidInputError("Some labels have a null entity key.", hint=_HINT)
        out["request_id"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        out["keys"] = json.dumps(list(keys))
        out["key"] = key_strings(frame, keys)
        out["timestamp_us"] = timestamps_us(frame[timestamp])
    elif "request_id" in frame.columns:
        if frame["request_id"].isna().any():
            raise InvalidInputError("Some labels have no request_id.", hint=_HINT)
        out["request_id"] = frame["request_id"].astype(str)
        out["keys"] = out["key"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        out["timestamp_us"] = pd.Series([None] * len(frame), index=frame.index, dtype="Int64")
    else:
        raise InvalidInputError("The labels have neither a request_id column nor keys=[...].",
                                hint=_HINT)
    out["label"] = _label_values(frame[label])
    return out.reset_index(drop=True)


class LabelLog:
    """Labels of one project, appended durably under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, frame: pd.DataFrame, *, label: str = "label", keys: Sequence[str] | None = None,
              timestamp: str = "timestamp") -> int:
        """Append labels (see the module docstring); returns how many were logged."""
        rows = label_rows(frame, label=label, keys=keys, timestamp=timestamp)
        if rows.empty:
            return 0
        now_us = time.time_ns() // 1_000
        rows.insert(0, "seq", np.arange(len(rows), dtype=np.int64))
        rows.insert(0, "logged_at_us", np.int64(now_us))
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(3)}.parquet"
        write_durably(pa.Table.from_pandas(rows, preserve_index=False), self.root / name)
        if len(list(self.root.glob("*.parquet"))) > COMPACT_AFTER_FILES:
            self.compact()
        return len(rows)

    def read(self) -> pd.DataFrame:
        """Every label logged, the newest per key only (last logged wins)."""
        files = sorted(self.root.glob("*.parquet")) if self.root.exists() else []
        tables = []
        for file in files:
            try:
                tables.append(pq.read_table(file))
            except FileNotFoundError:  # compacted meanwhile: its rows are in the merged file
                continue
        if not tables:
            return pd.DataFrame({name: pd.Series(dtype=object) for name in LABEL_COLUMNS})
        frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
        frame = frame.sort_values(["logged_at_us", "seq"], kind="stable")
        parts = [_text(frame[name]) for name in ("request_id", "keys", "key", "timestamp_us")]
        identity = pd.Series(["\x1f".join(row) for row in zip(*parts, strict=True)],
                             index=frame.index)
        return frame[~identity.duplicated(keep="last")].reset_index(drop=True)

    def compact(self) -> int:
        """Merge the label files into one (the newest label per key); returns files removed.

        Crash-safe: the merged file is durable before the old ones go, and duplicates seen
        in between resolve to the same newest label.
        """
        files = sorted(self.root.glob("*.parquet")) if self.root.exists() else []
        if len(files) < 2:
            return 0
        merged = self.read()
        name = f"{time.time_ns():020d}-{os.getpid()}-compacted.parquet"
        write_durably(pa.Table.from_pandas(merged, preserve_index=False), self.root / name)
        for file in files:
            file.unlink(missing_ok=True)
        return len(files)


def _text(column: pd.Series) -> list[str]:
    """Each value as text ('' for null; integral numbers without '.0')."""
    missing = column.isna().to_numpy()
    return ["" if gone else _key_text(value)
            for value, gone in zip(column.astype(object), missing, strict=True)]


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The predictions with `label` and `label_logged_at` columns (NaN/NaT where unlabeled).

    A row matches a label by its request id, or by the label's entity keys and its exact
    timestamp; when both match, the label logged last wins.
    """
    out = predictions.copy()
    n = len(out)
    best_label = pd.Series([np.nan] * n, index=out.index, dtype=object)
    best_at = pd.Series(np.full(n, -1, dtype=np.int64), index=out.index)
    if n and not labels.empty:
        by_id = labels[labels["request_id"].notna()]
        if not by_id.empty and "request_id" in out.columns:
            found = by_id.drop_duplicates("request_id", keep="last").set_index("request_id")
            ids = out["request_id"].astype(str)
            _take(best_label, best_at, ids.map(found["label"]), ids.map(found["logged_at_us"]))
        keyed = labels[labels["keys"].notna()]
        if not keyed.empty:
            stamp = out["timestamp"].astype("datetime64[us, UTC]").astype("int64")
            for names_json, group in keyed.groupby("keys", sort=False):
                names = json.loads(names_json)
                if any(name not in out.columns for name in names):
                    continue
                usable = out[names].notna().all(axis=1)
                if not usable.any():
                    continue
                ident = pd.Series([f"{k}@{t}" for k, t in zip(key_strings(out.loc[usable], names),
                                                              stamp[usable], strict=True)],
                                  index=out.index[usable])
                target = pd.Series([f"{k}@{int(t)}" for k, t in zip(group["key"], group["timestamp_us"],
                                                                     strict=True)], index=group.index)
                found = group.assign(ident=target.to_numpy()).drop_duplicates("ident", keep="last") \
                    .set_index("ident")
                _take(best_label, best_at, ident.map(found["label"]).reindex(out.index),
                      ident.map(found["logged_at_us"]).reindex(out.index))
    labeled = best_at >= 0
    values = best_label.where(labeled)
    numeric = pd.to_numeric(values, errors="coerce")
    out["label"] = numeric if numeric.notna().sum() == labeled.sum() else values
    out["label_logged_at"] = pd.to_datetime(best_at.where(labeled), unit="us", utc=True)
    return out


def _take(best_label: pd.Series, best_at: pd.Series, label: pd.Series, at: pd.Series) -> None:
    """Keep, per row, the label with the later logged time."""
    at_values = at.fillna(-1).astype(np.int64)
    newer = label.notna() & (at_values > best_at)
    best_label[newer] = label[newer]
    best_at[newer] = at_values[newer]
