"""The prediction log: append without blocking, read back, torn tails, drops, compaction."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from shipyard.predictions import PredictionBatch, PredictionLog
from shipyard.predictions.compaction import compact_segment, partition_dir
from shipyard.predictions.segments import decode_frames, encode_frame

DAY = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _batch(n: int, *, model: str = "fraud", version: int = 1, at: datetime = DAY,
           start: int = 0, proba: bool = True) -> PredictionBatch:
    ids = [f"r{start + i}" for i in range(n)]
    return PredictionBatch(model, version, ids, [_us(at) + i for i in range(n)],
                           {"customer_id": list(range(start, start + n)),
                            "amount": [float(i) for i in range(n)],
                            "version": [7] * n},  # clashes with a meta column
                           [i % 2 for i in range(n)],
                           [[0.5, 0.5]] * n if proba else None)


def _log(tmp_path: Path, **options: object) -> PredictionLog:
    return PredictionLog(tmp_path / "log", flush_interval_seconds=0.05, **options)  # type: ignore[arg-type]


def _wait_written(writer, rows: int) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 5
    while writer.stats().written_rows < rows:
        assert time.monotonic() < deadline, writer.stats()
        time.sleep(0.01)


def test_appended_predictions_read_back_before_and_after_compaction(tmp_path: Path) -> None:
    log = _log(tmp_path)
    writer = log.open_writer()
    assert writer.append(_batch(3))
    assert writer.append(_batch(2, model="other", start=10))
    assert writer.append(_batch(2, version=2, at=DAY + timedelta(days=1), start=20, proba=False))
    _wait_written(writer, 7)
    before = log.read("fraud")
    writer.close()
    assert log.compact() == 1
    after = log.read("fraud")
    assert list(before["request_id"]) == ["r0", "r1", "r2", "r20", "r21"]
    pd.testing.assert_frame_equal(before, after)
    assert list(after.columns[:7]) == ["timestamp", "request_id", "model", "version", "variant",
                                       "prediction", "probabilities"]
    assert list(after["version"]) == [1, 1, 1, 2, 2]
    assert list(after["feature.version"]) == [7] * 5
    assert str(after["timestamp"].dtype) == "datetime64[us, UTC]"
    assert (partition_dir(log.root, "fraud", "2026-03-02")).is_dir()
    assert list(log.read("other")["customer_id"]) == [10, 11]


def test_time_range_is_half_open(tmp_path: Path) -> None:
    log = _log(tmp_path)
    writer = log.open_writer()
    for day in range(3):
        writer.append(_batch(1, at=DAY + timedelta(days=day), start=day))
    writer.close()
    log.compact()
    got = log.read("fraud", DAY + timedelta(days=1), DAY + timedelta(days=2))
    assert list(got["request_id"]) == ["r1"]
    assert log.read("fraud", "2030-01-01").empty
    assert log.read("nobody").empty


def test_a_torn_last_record_is_ignored(tmp_path: Path) -> None:
    last = encode_frame(_batch(1, start=5).to_record())
    frames = encode_frame(_batch(2).to_record()) + last
    assert len(list(decode_frames(frames))) == 2
    for cut in (1, 5, 9, len(last) - 1):
        assert len(list(decode_frames(frames[:-cut]))) == 1
    corrupt = bytearray(frames)
    corrupt[-1] ^= 0xFF
    assert len(list(decode_frames(bytes(corrupt)))) == 1
    segments = tmp_path / "log" / "segments"
    segments.mkdir(parents=True)
    (segments / "0001-1-abc.seg").write_bytes(frames[:-3])
    assert list(_log(tmp_path).read("fraud")["request_id"]) == ["r0", "r1"]


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    log = _log(tmp_path, max_queue_rows=5)
    writer = log.open_writer()
    writer._stop.set()  # freeze the thread's drain: nothing leaves the queue
    writer._thread.join()  # type: ignore[union-attr]
    writer._stop.clear()
    assert writer.append(_batch(4))
    started = time.perf_counter()
    assert not writer.append(_batch(2))
    assert time.perf_counter() - started < 0.01
    stats = writer.stats()
    assert (stats.queued_rows, stats.dropped_rows) == (4, 2)
    assert stats.lag_seconds >= 0


def test_writes_reach_the_file_within_the_flush_interval(tmp_path: Path) -> None:
    log = _log(tmp_path)
    writer = log.open_writer()
    writer.append(_batch(1))
    time.sleep(0.2)
    assert list(log.read("fraud")["request_id"]) == ["r0"]  # read while the writer runs
    stats = writer.stats()
    assert stats.written_rows == 1 and stats.unsynced_seconds == 0
    writer.close()


def test_an_open_segment_is_not_compacted(tmp_path: Path) -> None:
    log = _log(tmp_path)
    writer = log.open_writer()
    writer.append(_batch(1))
    _wait_written(writer, 1)
    assert log.compact() == 0
    writer.close()
    assert log.compact() == 1


def test_parquet_of_a_segment_that_still_exists_is_not_read_twice(tmp_path: Path) -> None:
    """A crash between writing the Parquet file and deleting its segment."""
    log = _log(tmp_path)
    writer = log.open_writer()
    writer.append(_batch(2))
    writer.close()
    segment = next((log.root / "segments").glob("*.seg"))
    kept = segment.read_bytes()
    assert compact_segment(log.root, segment)
    segment.write_bytes(kept)
    assert len(log.read("fraud")) == 2
    assert log.compact() == 1
    assert len(log.read("fraud")) == 2


def test_segments_roll_by_size_and_are_compacted_in_the_background(tmp_path: Path) -> None:
    log = _log(tmp_path, segment_max_bytes=1)
    writer = log.open_writer()
    for i in range(3):
        writer.append(_batch(1, start=i))
        _wait_written(writer, i + 1)
        time.sleep(0.1)
    writer.close()
    deadline = time.monotonic() + 5
    while list((log.root / "segments").glob("*.seg")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert list(log.read("fraud")["request_id"]) == ["r0", "r1", "r2"]


@pytest.mark.parametrize("value", [datetime(2026, 1, 1, tzinfo=UTC), "text", None])
def test_feature_values_of_any_type_are_kept(tmp_path: Path, value: object) -> None:
    log = _log(tmp_path)
    writer = log.open_writer()
    writer.append(PredictionBatch("m", 1, ["a"], [_us(DAY)], {"x": [value]}, ["yes"]))
    writer.close()
    log.compact()
    frame = log.read("m")
    assert frame["prediction"].tolist() == ["yes"]
    assert frame["x"].tolist() == [value.isoformat() if isinstance(value, datetime) else value]


def test_a_write_error_is_counted_and_the_writer_keeps_going(tmp_path: Path) -> None:
    from shipyard.predictions import PredictionWriter

    blocked = tmp_path / "segments"
    writer = PredictionWriter(blocked, flush_interval_seconds=0.05).start()
    blocked.rmdir()
    blocked.write_text("a file where the folder should be")
    writer.append(_batch(2))
    deadline = time.monotonic() + 5
    while writer.stats().failed_rows < 2:
        assert time.monotonic() < deadline, writer.stats()
        time.sleep(0.01)
    blocked.unlink()
    blocked.mkdir()
    writer.append(_batch(1, start=9))
    _wait_written(writer, 1)
    writer.close()
    assert writer.stats().queued_rows == 0


def test_a_compactor_never_takes_a_segment_before_its_writer_locks_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    from shipyard.predictions import compaction, writer

    log = _log(tmp_path)
    real_flock = fcntl.flock

    def compact_first(fd: int, operation: int) -> None:  # a compactor runs in between
        compaction.compact(log.root)
        real_flock(fd, operation)

    monkeypatch.setattr(writer.fcntl, "flock", compact_first)
    writer_ = log.open_writer()
    writer_.append(_batch(2))
    writer_.close()
    monkeypatch.undo()
    assert list(log.read("fraud")["request_id"]) == ["r0", "r1"]
