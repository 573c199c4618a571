"""Reading the log back: compacted Parquet plus segments not compacted yet, as one frame."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.core.time import to_utc
from shipyard.predictions.compaction import merge_columns, table_of
from shipyard.predictions.records import META_COLUMNS, PredictionBatch
from shipyard.predictions.segments import SUFFIX, read_segment


def _segment_rows(root: Path, model: str) -> tuple[pa.Table | None, set[str]]:
    """Rows of `model` in every readable segment, and the stems of the segments read."""
    parts, read = [], set()
    for path in sorted((root / "segments").glob(f"*{SUFFIX}")):
        try:
            records = read_segment(path)
        except FileNotFoundError:  # compacted meanwhile: its Parquet files are complete
            continue
        read.add(path.stem)
        parts += [PredictionBatch.from_record(r).to_columns() for r in records if r["m"] == model]
    return (table_of(merge_columns(parts)) if parts else None), read


def _days(start: datetime | None, end: datetime | None, root: Path, model: str) -> list[Path]:
    base = root / "parquet" / f"model={model}"
    folders = sorted(base.glob("date=*"))
    first = start.strftime("%Y-%m-%d") if start else ""
    last = end.strftime("%Y-%m-%d") if end else "9999-99-99"
    return [f for f in folders if first <= f.name.removeprefix("date=") <= last]


def read_predictions(root: Path, model: str, start: datetime | str | None = None,
                     end: datetime | str | None = None) -> pd.DataFrame:
    """Predictions of `model` with start <= timestamp < end, oldest first.

    Columns: timestamp (UTC), request_id, model, version, variant, prediction, probabilities,
    experiment, latency_ms, then one column per feature value the model was given.
    """
    lo = None if start is None else to_utc(start)
    hi = None if end is None else to_utc(end)
    # segments first: a segment compacted after this read shows up as Parquet below
    recent, segment_stems = _segment_rows(root, model)
    tables = []
    for folder in _days(lo, hi - timedelta(microseconds=1) if hi else None, root, model):
        for file in sorted(folder.glob("*.parquet")):
            if file.stem not in segment_stems:
                tables.append(pq.read_table(file))
    if recent is not None:
        tables.append(recent)
    if not tables:
        return _empty()
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    if lo is not None:
        frame = frame[frame["timestamp"] >= pd.Timestamp(lo)]
    if hi is not None:
        frame = frame[frame["timestamp"] < pd.Timestamp(hi)]
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype=object) for name in META_COLUMNS})
    frame["timestamp"] = pd.Series(dtype="datetime64[us, UTC]")
    frame["version"] = pd.Series(dtype="int64")
    return frame
