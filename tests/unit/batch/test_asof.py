"""The local engine's in-memory join returns exactly the DuckDB store's point-in-time join."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard.batch.asof import AsofJoin, ViewIndex
from shipyard.core.errors import InvalidInputError
from shipyard.core.types import Field, Float64, Int64, String
from shipyard.features.definitions import FileSource
from shipyard.features.offline import ROW, TS, ViewRead
from shipyard.features.offline.duckdb import DuckDBOfflineStore

T0 = pd.Timestamp("2026-03-01", tz="UTC")
HOUR = 3_600


def history(rng: np.random.Generator, rows: int, keys: int, *, created: bool,
            strings: bool) -> pd.DataFrame:
    """Feature rows on an hourly grid, so that (key, time) ties are common."""
    frame = pd.DataFrame({
        "id": rng.integers(0, keys, rows),
        "shop": rng.integers(0, 3, rows),
        "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 200, rows) * HOUR, unit="s"),
        "value": rng.normal(size=rows),
        "count": rng.integers(0, 100, rows),
    })
    if created:
        frame["created"] = frame["event_timestamp"] + pd.to_timedelta(
            rng.integers(0, 10_000, rows), unit="s")
        frame.loc[rng.random(rows) < 0.05, "created"] = pd.NaT  # a null created time loses
    if strings:
        frame["id"] = "c" + frame["id"].astype(str)
    return frame


def entity_table(rng: np.random.Generator, rows: int, keys: int, *, strings: bool) -> pa.Table:
    ids = rng.integers(-2, keys + 3, rows)  # some keys never seen
    at = (T0 + pd.to_timedelta(rng.integers(-20, 230, rows) * HOUR
                               + rng.choice([0, 1, -1, 1800], rows), unit="s"))
    table = {ROW: np.arange(rows), "id": ids.astype(str) if strings else ids,
             "shop": rng.integers(0, 3, rows),
             TS: at.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[us]")}
    if strings:
        table["id"] = np.char.add("c", table["id"])
    return pa.table(table)


@pytest.mark.parametrize("created", [True, False])
@pytest.mark.parametrize("ttl_hours", [None, 5])
@pytest.mark.parametrize(("keys", "strings"), [(("id",), False), (("id", "shop"), False),
                                               (("id",), True)])
def test_matches_the_duckdb_join(tmp_path: Path, created: bool, ttl_hours: int | None,
                                 keys: tuple[str, ...], strings: bool) -> None:
    rng = np.random.default_rng(len(keys) * 7 + created + (ttl_hours or 0))
    rows = history(rng, 3_000, 40, created=created, strings=strings)
    # rows equal in keys, time and created time tie: either may be joined, so avoid them
    rows = rows.drop_duplicates([*keys, "event_timestamp", *(["created"] if created else [])])
    rows.to_parquet(tmp_path / "stats.parquet")
    source = FileSource("stats.parquet", created_timestamp_field="created" if created else None)
    read = ViewRead("stats", source, keys, (Field("value", Float64), Field("count", Int64)),
                    None if ttl_hours is None else ttl_hours * HOUR)
    store = DuckDBOfflineStore(tmp_path, threads=1)
    entities = entity_table(rng, 2_000, 40, strings=strings)
    expected = store.point_in_time_join(entities, [read])
    join = AsofJoin({"stats": ViewIndex.build(read, store.scan_rows(read))},
                    {source.path: store.describe_source(source)})
    assert join.point_in_time_join(entities, [read]).equals(expected)
    assert expected.column("stats__value").null_count > 0  # the cases without a row are tested


def test_an_index_survives_saving_and_loading(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    history(rng, 500, 10, created=True, strings=True).to_parquet(tmp_path / "stats.parquet")
    source = FileSource("stats.parquet", created_timestamp_field="created")
    read = ViewRead("stats", source, ("id",), (Field("value", Float64),), 2 * HOUR)
    store = DuckDBOfflineStore(tmp_path, threads=1)
    index = ViewIndex.build(read, store.scan_rows(read))
    index.save(tmp_path / "index")
    loaded = ViewIndex.load(read, tmp_path / "index")
    entities = entity_table(rng, 300, 10, strings=True)
    keys = [entities.column("id")]
    at = entities.column(TS).cast(pa.int64()).to_numpy()
    assert loaded.lookup(keys, at).equals(index.lookup(keys, at))


def test_an_empty_view_joins_nulls(tmp_path: Path) -> None:
    pd.DataFrame({"id": pd.Series([], dtype="int64"), "value": pd.Series([], dtype="float64"),
                  "event_timestamp": pd.Series([], dtype="datetime64[us, UTC]")}
                 ).to_parquet(tmp_path / "stats.parquet")
    read = ViewRead("stats", FileSource("stats.parquet"), ("id",), (Field("value", Float64),),
                    None)
    store = DuckDBOfflineStore(tmp_path, threads=1)
    join = AsofJoin({"stats": ViewIndex.build(read, store.scan_rows(read))}, {})
    out = join.point_in_time_join(entity_table(np.random.default_rng(0), 5, 3, strings=False),
                                  [read])
    assert out.column("stats__value").null_count == 5


def test_filtering_by_created_time_is_refused() -> None:
    read = ViewRead("stats", FileSource("x.parquet"), ("id",), (Field("v", String),), None)
    with pytest.raises(InvalidInputError, match="created timestamp"):
        AsofJoin({}, {}).point_in_time_join(pa.table({ROW: [0], TS: [0]}), [read],
                                            filter_by_created_timestamp=True)
