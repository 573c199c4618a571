"""Compaction: closed segments become Parquet files partitioned by model and date.

`<root>/parquet/model=<name>/date=<YYYY-MM-DD>/<segment stem>.parquet`. A segment is deleted
only once its Parquet files are durable; readers ignore the Parquet files of a segment that
still exists, so a crash half-way through never shows a prediction twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.predictions.records import PredictionBatch
from shipyard.predictions.segments import SUFFIX, read_segment

logger = logging.getLogger(__name__)


def partition_dir(root: Path, model: str, day: str) -> Path:
    """The folder of one model's predictions on one UTC day."""
    return root / "parquet" / f"model={model}" / f"date={day}"


def utc_day(timestamp_us: int) -> str:
    """The UTC date of a timestamp in microseconds, as YYYY-MM-DD."""
    return datetime.fromtimestamp(timestamp_us / 1e6, UTC).strftime("%Y-%m-%d")


def table_of(columns: dict[str, list[Any]]) -> pa.Table:
    """An Arrow table of prediction-log columns; the timestamp becomes timestamp[us, UTC]."""
    arrays = {}
    for name, values in columns.items():
        if name == "timestamp":
            arrays[name] = pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
            continue
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types across versions: keep text
            arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(arrays)


def merge_columns(parts: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    """Concatenate column sets; a column missing from a part is null there."""
    names = list(dict.fromkeys(name for part in parts for name in part))
    merged: dict[str, list[Any]] = {name: [] for name in names}
    for part in parts:
        n = len(part["timestamp"])
        for name in names:
            merged[name].extend(part.get(name) or [None] * n)
    return merged


def split_by_partition(batches: list[PredictionBatch]) -> dict[tuple[str, str], list[dict]]:
    """Each batch's columns split by (model, UTC day)."""
    out: dict[tuple[str, str], list[dict[str, list[Any]]]] = {}
    for batch in batches:
        columns = batch.to_columns()
        days = [utc_day(t) for t in batch.timestamps_us]
        for day in dict.fromkeys(days):
            keep = [i for i, d in enumerate(days) if d == day]
            part = columns if len(keep) == len(days) else \
                {k: [v[i] for i in keep] for k, v in columns.items()}
            out.setdefault((batch.model, day), []).append(part)
    return out


@contextmanager
def _closed_segment(path: Path) -> Iterator[bool]:
    """Lock a segment for compaction; yields False when a writer still holds it."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - held for the lock
    except FileNotFoundError:
        yield False
        return
    with file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield path.exists()


def write_durably(table: pa.Table, target: Path) -> None:
    """Write `table` to `target` atomically: a temp file, fsync, rename, fsync the folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as file:
        os.fsync(file.fileno())
    os.replace(tmp, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compact_segment(root: Path, path: Path) -> bool:
    """Turn one closed segment into Parquet files and delete it; False if it is still open."""
    with _closed_segment(path) as closed:
        if not closed:
            return False
        batches = [PredictionBatch.from_record(r) for r in read_segment(path)]
        for (model, day), parts in split_by_partition(batches).items():
            write_durably(table_of(merge_columns(parts)),
                           partition_dir(root, model, day) / f"{path.stem}.parquet")
        path.unlink()
        return True


def compact(root: Path) -> int:
    """Compact every closed segment under `root` (from any process); how many were."""
    done = 0
    for path in sorted((root / "segments").glob(f"*{SUFFIX}")):
        try:
            done += compact_segment(root, path)
        except Exception:  # one bad segment must not stop the others; it stays for a retry
            logger.exception("Could not compact prediction-log segment %s.", path)
    return done


class BackgroundCompactor:
    """Runs `compact` in a daemon thread when asked, one run at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._again = threading.Event()

    def request(self) -> None:
        """Compact soon, without waiting."""
        self._again.set()
        if self._lock.acquire(blocking=False):
            threading.Thread(target=self._run, name="shipyard-log-compaction",
                             daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                while self._again.is_set():
                    self._again.clear()
                    compact(self.root)
            finally:
                self._lock.release()
            # a request that came in while releasing found the lock taken: serve it here
            if not self._again.is_set() or not self._lock.acquire(blocking=False):
                return
