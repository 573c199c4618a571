"""The writer: an in-memory queue drained by a thread into durable, rolling segment files.

`append` never blocks and never raises: past `max_queue_rows` a batch is dropped and
counted. The thread writes what is queued every few milliseconds (so a killed process loses
only what was not yet handed to the OS), fsyncs at least every `flush_interval_seconds`, and
rolls to a new segment by size or age; a segment is locked (flock) while it is written, which
is how compaction tells open segments from closed ones, across processes too.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shipyard.predictions.records import PredictionBatch
from shipyard.predictions.segments import SUFFIX, encode_frame

logger = logging.getLogger(__name__)
_MAX_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class WriterStats:
    """Counters of a writer (rows are predictions, not batches)."""

    queued_rows: int
    written_rows: int
    dropped_rows: int
    failed_rows: int  # lost to a write error (disk full, ...)
    lag_seconds: float  # age of the oldest prediction not yet written to a segment
    unsynced_seconds: float  # age of the oldest written prediction not yet fsynced


class _Segment:
    """One open, locked segment file."""

    def __init__(self, folder: Path) -> None:
        stem = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(3)}"
        # locked under another name first: a compactor must never see it unlocked
        fresh = folder / f"{stem}.new"
        self.file: BinaryIO = open(fresh, "ab", buffering=0)  # noqa: SIM115 - kept open
        fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = folder / f"{stem}{SUFFIX}"
        os.replace(fresh, self.path)
        _fsync_dir(folder)
        self.opened_at = time.monotonic()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def sync(self) -> None:
        os.fsync(self.file.fileno())

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self.file.close()  # releases the lock


class PredictionWriter:
    """Append prediction batches without blocking; a thread makes them durable."""

    def __init__(self, folder: Path, *, flush_interval_seconds: float = 1.0,
                 max_queue_rows: int = 100_000, segment_max_bytes: int = 64 << 20,
                 segment_max_age_seconds: float = 300.0,
                 on_roll: Callable[[], object] | None = None) -> None:
        self.folder = folder
        self.flush_interval_seconds = flush_interval_seconds
        self.max_queue_rows = max_queue_rows
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_age_seconds = segment_max_age_seconds
        self.on_roll = on_roll
        self._queue: deque[tuple[float, PredictionBatch]] = deque()
        self._lock = threading.Lock()
        self._queued = self._written = self._dropped = self._failed = 0
        self._unsynced_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._segment: _Segment | None = None

    def start(self) -> PredictionWriter:
        """Start the writer thread (idempotent); returns self."""
        if self._thread is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._run, name="shipyard-prediction-log",
                                            daemon=True)
            self._thread.start()
        return self

    def append(self, batch: PredictionBatch) -> bool:
        """Queue a batch for writing; False (and counted as dropped) when the queue is full."""
        rows = len(batch)
        with self._lock:
            if self._queued + rows > self.max_queue_rows or self._stop.is_set():
                self._dropped += rows
                return False
            self._queued += rows
            self._queue.append((time.monotonic(), batch))
        return True

    def stats(self) -> WriterStats:
        """The current counters."""
        now = time.monotonic()
        with self._lock:
            oldest = self._queue[0][0] if self._queue else now
            unsynced = self._unsynced_since
            return WriterStats(self._queued, self._written, self._dropped, self._failed,
                               now - oldest, 0.0 if unsynced is None else now - unsynced)

    def close(self, timeout: float = 10.0) -> None:
        """Write and fsync everything queued, then stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        poll = min(_MAX_POLL_SECONDS, self.flush_interval_seconds / 4)
        last_sync = time.monotonic()
        while True:
            stopping = self._stop.wait(poll)
            self._write_queued()
            now = time.monotonic()
            segment = self._segment
            if segment is not None and (stopping or now - last_sync >= self.flush_interval_seconds):
                if self._file_op(segment.sync):
                    with self._lock:
                        self._unsynced_since = None
                last_sync = now
                if stopping or segment.size >= self.segment_max_bytes or \
                        now - segment.opened_at >= self.segment_max_age_seconds:
                    self._roll(compact=not stopping)  # on exit, the next start compacts it
            if stopping:
                return

    def _write_queued(self) -> None:
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
        if not items:
            return
        rows = sum(len(batch) for _, batch in items)
        data = b"".join(encode_frame(batch.to_record()) for _, batch in items)
        written = self._file_op(lambda: self._open_segment().write(data))
        with self._lock:
            self._queued -= rows
            if not written:
                self._failed += rows
                return
            self._written += rows
            if self._unsynced_since is None:
                self._unsynced_since = items[0][0]

    def _open_segment(self) -> _Segment:
        if self._segment is None:
            self._segment = _Segment(self.folder)
        return self._segment

    def _roll(self, *, compact: bool) -> None:
        segment, self._segment = self._segment, None
        if segment is not None:
            self._file_op(segment.close)
            if compact and self.on_roll is not None:
                self.on_roll()

    def _file_op(self, action: Callable[[], object]) -> bool:
        """Run a file operation; on OSError log it, drop the segment (the next write opens a
        new one) and return False."""
        try:
            action()
            return True
        except OSError:
            logger.exception("The prediction log could not write to %s.", self.folder)
            broken, self._segment = self._segment, None
            if broken is not None:
                try:
                    broken.file.close()
                except OSError:
                    pass
            return False


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
