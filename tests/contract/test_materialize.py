"""Materialization on SQLite and Redis: the point-in-time rule for `end`, idempotence,
watermarks, newer-wins against pushes, resuming after a failure, progress."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import shipyard as sy
from shipyard.features import materialize as materialize_module
from shipyard.features.online import StoredRow, encode_key
from tests.contract._online import NOW, FailingStore, H, online, stats_frame, write_stats


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """SQLite metadata here; test_watermarks.py runs the watermark rules on PostgreSQL too."""
    return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"


def values(project: sy.Project, *keys: int) -> list[object]:
    return online(project, ["stats:value"], [{"customer_id": k} for k in keys])["value"]


def test_latest_row_per_key_as_of_end(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(1, NOW - 3 * H / 2, 1.0), (1, NOW - H, 2.0),
                                      (1, NOW + H, 9.0), (2, NOW - H / 2, 3.0)])
    results = online_project.features.materialize(NOW - 5 * H, NOW)
    assert {r.view: r.rows for r in results} == {"stats": 2, "pairs": 0}  # pairs: before start
    assert values(online_project, 1, 2) == [2.0, 3.0]  # the future row is not loaded


def test_rows_before_start_or_outside_the_ttl_are_not_loaded(online_project: sy.Project
                                                              ) -> None:
    write_stats(online_project.root, [(1, NOW - 5 * H, 1.0), (2, NOW - H, 2.0),
                                      (3, NOW - 100 * pd.Timedelta(minutes=1), 3.0)])
    [result] = online_project.features.materialize(NOW - 90 * pd.Timedelta(minutes=1), NOW,
                                                   views=["stats"])
    assert result.rows == 1  # 1 is past the 2 h ttl, 3 is before start
    assert values(online_project, 1, 2, 3) == [None, 2.0, None]
    pairs = online_project.features.materialize(None, NOW, views=["pairs"])
    assert pairs[0].rows == 1  # no ttl: 100 hours old is loaded


def test_ties_on_event_time_go_to_the_latest_created(online_project: sy.Project) -> None:
    frame = pd.concat([stats_frame([(1, NOW - H, 1.0)], created=NOW - H / 2),
                       stats_frame([(1, NOW - H, 2.0)], created=NOW - H / 4),
                       stats_frame([(1, NOW - H, 3.0)], created=NOW - H / 3)])
    frame.to_parquet(online_project.root / "stats.parquet")
    online_project.features.materialize(None, NOW)
    assert values(online_project, 1) == [2.0]


def test_a_missing_created_time_ranks_below_any_and_zones_are_exact(
        online_project: sy.Project) -> None:
    # key 1: equal event times, the row without a created time loses to the one with one;
    # key 2: times stored in another zone (+05:30), one microsecond apart, read as instants
    later = NOW - H + pd.Timedelta(microseconds=1)
    frame = stats_frame([(1, NOW - H, 5.0), (1, NOW - H, 6.0), (2, NOW - H, 7.0),
                         (2, later, 8.0)])
    frame["created"] = pd.Series([NOW - H / 2, pd.NaT, NOW - H, NOW - H],
                                 dtype="datetime64[ns, UTC]")
    frame["event_timestamp"] = frame["event_timestamp"].dt.tz_convert("Asia/Kolkata")
    frame.to_parquet(online_project.root / "stats.parquet")
    online_project.features.materialize(None, NOW)
    out = online(online_project, ["stats:value", "stats:name", "stats:tags", "stats:flag"],
                 [{"customer_id": 1}, {"customer_id": 2}])
    assert out == {"customer_id": [1, 2], "value": [5.0, 8.0], "name": ["v5", "v8"],
                   "tags": [[5, 6], [8, 9]], "flag": [True, True]}
    stored = online_project.features.online.read("stats", [encode_key([2])])[0]
    assert stored is not None and stored.event_us == int(later.value // 1_000)


def test_materialization_is_idempotent(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(k, NOW - H, float(k)) for k in range(1, 50)])
    first = online_project.features.materialize(None, NOW, views=["stats"])
    before = online(online_project, ["stats:value", "stats:tags"],
                    [{"customer_id": k} for k in range(60)])
    again = online_project.features.materialize(None, NOW, views=["stats"])
    assert first[0].rows == again[0].rows == 49
    assert online(online_project, ["stats:value", "stats:tags"],
                  [{"customer_id": k} for k in range(60)]) == before


def test_an_older_window_never_overwrites_newer_values(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(1, NOW - 2 * H, 1.0), (1, NOW - H, 2.0)])
    online_project.features.materialize(None, NOW)
    [result] = online_project.features.materialize(None, NOW - 3 * H / 2, views=["stats"])
    assert result.rows == 1 and result.written == 0
    assert values(online_project, 1) == [2.0]


def test_materialization_never_replaces_a_newer_push(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(1, NOW - H, 1.0), (2, NOW - H, 2.0)])
    online_project.features.push("stats_push", stats_frame([(1, NOW - H / 2, 10.0),
                                                            (2, NOW - 3 * H / 2, 20.0)]))
    assert values(online_project, 1, 2) == [10.0, 20.0]
    online_project.features.materialize(None, NOW)
    # the push is in the offline history too: 1 keeps the pushed (newer) value, 2 gets the
    # batch row, which is newer than the pushed one
    assert values(online_project, 1, 2) == [10.0, 2.0]
    online_project.features.materialize_incremental(NOW)
    assert values(online_project, 1, 2) == [10.0, 2.0]


def test_incremental_runs_start_at_the_watermark(online_project: sy.Project) -> None:
    features = online_project.features
    write_stats(online_project.root, [(1, NOW - 3 * H / 2, 1.0)])
    [first] = features.materialize_incremental(NOW - H, views=["stats"])
    assert first.start is None and first.rows == 1
    assert features.watermarks.get("stats") == (NOW - H).to_pydatetime()
    write_stats(online_project.root, [(1, NOW - 3 * H / 2, 1.0), (2, NOW - H / 2, 2.0),
                                      (3, NOW - 2 * H, 3.0)])  # 3 arrived late: not picked up
    [second] = features.materialize_incremental(NOW, views=["stats"])
    assert second.start == (NOW - H).to_pydatetime() and second.rows == 1
    assert features.watermarks.get("stats") == NOW.to_pydatetime()
    assert values(online_project, 1, 2, 3) == [1.0, 2.0, None]
    assert features.watermarks.get("pairs") is None


def test_a_failure_part_way_keeps_the_watermark_and_a_rerun_completes(
        online_project: sy.Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(materialize_module, "BATCH_ROWS", 4)
    write_stats(online_project.root, [(k, NOW - H, float(k)) for k in range(1, 11)])
    features = online_project.features
    store = features.online
    failing = FailingStore(store, ok_writes=1)
    features.online = failing  # type: ignore[misc]
    with pytest.raises(sy.BackendUnavailable, match="injected"):
        features.materialize_incremental(NOW, views=["stats"])
    assert failing.writes == 1
    assert features.watermarks.get("stats") is None
    features.online = store  # type: ignore[misc]
    assert sum(v is not None for v in values(online_project, *range(1, 11))) == 4
    [result] = features.materialize_incremental(NOW, views=["stats"])
    assert result.start is None and result.rows == 10
    assert values(online_project, *range(1, 11)) == [float(k) for k in range(1, 11)]
    assert features.watermarks.get("stats") == NOW.to_pydatetime()


def test_progress_is_reported_per_chunk(online_project: sy.Project,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(materialize_module, "BATCH_ROWS", 3)
    write_stats(online_project.root, [(k, NOW - H, float(k)) for k in range(1, 8)])
    calls: list[tuple[str, int, int]] = []
    online_project.features.materialize(None, NOW, views=["stats"],
                                        progress=lambda *args: calls.append(args))
    assert calls[0] == ("stats", 0, 7) and calls[-1] == ("stats", 7, 7)
    assert [done for _, done, _ in calls] == sorted(done for _, done, _ in calls)
    assert len(calls) >= 4


def test_chunks_are_written_with_one_write_each(online_project: sy.Project,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(materialize_module, "BATCH_ROWS", 5)
    write_stats(online_project.root, [(k, NOW - H, float(k)) for k in range(1, 21)])
    sizes: list[int] = []
    store = online_project.features.online
    original = store.write

    def write(view: str, rows: list[StoredRow]) -> int:
        sizes.append(len(rows))
        return original(view, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "write", write)
    online_project.features.materialize(None, NOW, views=["stats"])
    assert sum(sizes) == 20 and max(sizes) <= 5


def test_bad_arguments(online_project: sy.Project) -> None:
    features = online_project.features
    with pytest.raises(sy.InvalidInputError, match="start .* is after its end"):
        features.materialize(NOW, NOW - H)
    with pytest.raises(sy.NotFoundError, match="Feature view 'ghost'.*Known views"):
        features.materialize(None, NOW, views=["ghost"])
    with pytest.raises(sy.InvalidInputError, match="online=False"):
        features.materialize(None, NOW, views=["archive"])
    with pytest.raises(sy.InvalidInputError, match="Cannot read 'yesterday'"):
        features.materialize_incremental("yesterday")


def test_naive_and_string_times_are_utc(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(1, NOW - H, 1.0)])
    naive = (NOW - H / 2).tz_localize(None).isoformat()
    [result] = online_project.features.materialize(None, naive, views=["stats"])
    assert result.end == (NOW - H / 2).to_pydatetime() and result.rows == 1
