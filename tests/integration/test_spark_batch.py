"""Spark in local mode: the same rows and predictions as the local engine, and the same
point-in-time join as the DuckDB offline store, edge cases included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import shipyard as sy
from shipyard.batch._spark_join import TS, point_in_time_join
from shipyard.core.types import Field, Float64, Int64, String
from shipyard.features.definitions import FileSource
from shipyard.features.offline import ROW, ViewRead
from shipyard.features.offline.duckdb import DuckDBOfflineStore
from tests.unit.batch.fraud_project import entities, make_fraud_project, spark_or_skip

T0 = pd.Timestamp("2026-03-01 12:00", tz="UTC")
H = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def spark() -> Any:
    """The test process's SparkSession (started once: it takes ~10 s)."""
    return spark_or_skip()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sy.Project]:
    with make_fraud_project(tmp_path_factory.mktemp("spark") / "fraud") as proj:
        yield proj


def test_local_and_spark_give_the_same_rows_and_predictions(project: sy.Project, spark: Any,
                                                            tmp_path: Path) -> None:
    frame = entities(project, 4_000, seed=11)
    frame.loc[:9, "customer_id"] = 999_999  # unknown customers
    frame.loc[10:19, "event_timestamp"] = pd.Timestamp("2020-01-01", tz="UTC")  # no history yet
    frame = pd.concat([frame, frame.iloc[:50].assign(txn=frame["txn"].iloc[:50] + 10_000)])
    source = tmp_path / "entities.parquet"
    frame.to_parquet(source, row_group_size=1_000)
    outputs = {}
    for engine in ("local", "spark"):
        project.batch.predict("fraud@champion", source, output=tmp_path / engine, engine=engine,
                              keep_columns=["txn", "amount"], chunk_rows=1_000)
        outputs[engine] = pd.read_parquet(tmp_path / engine).sort_values("txn").reset_index(
            drop=True)
    local, on_spark = outputs["local"], outputs["spark"]
    assert len(local) == len(on_spark) == len(frame)
    assert list(local.columns) == list(on_spark.columns)
    same = ["customer_id", "merchant_id", "event_timestamp", "txn", "amount", "prediction",
            "model_name", "model_version"]
    pd.testing.assert_frame_equal(local[same], on_spark[same])
    for column in ("proba_0", "proba_1"):
        np.testing.assert_allclose(local[column], on_spark[column], rtol=0, atol=1e-9)
    assert local.loc[local["customer_id"] == 999_999, "proba_1"].notna().all()


def test_a_frame_scored_at_one_time_is_the_same_on_spark(project: sy.Project, spark: Any,
                                                         tmp_path: Path) -> None:
    frame = entities(project, 500, seed=12).drop(columns="event_timestamp")
    at = pd.Timestamp("2026-10-30 23:00", tz="UTC")
    calls: list[tuple[int, int]] = []
    for engine in ("local", "spark"):
        calls.clear()
        project.batch.predict("fraud@champion", frame, output=tmp_path / engine, engine=engine,
                              features_at=at, keep_columns=["txn"],
                              progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 500), (500, 500)]  # Spark reports the start and the end
    local, on_spark = (pd.read_parquet(tmp_path / e).sort_values("txn").reset_index(drop=True)
                       for e in ("local", "spark"))
    assert (on_spark["event_timestamp"] == at).all() and len(on_spark) == 500
    pd.testing.assert_frame_equal(local.drop(columns="run_id"), on_spark.drop(columns="run_id"),
                                  check_exact=False, rtol=0, atol=1e-9)


def stats_rows() -> pd.DataFrame:
    """Feature rows that exercise every rule: ties on time (created breaks them, a null created
    loses), the ttl edge, rows after the entity time, other keys."""
    rows = [(1, T0, T0, 1.0), (1, T0 + H, T0 + 3 * H, 2.0), (1, T0 + H, T0 + 2 * H, 3.0),
            (1, T0 + H, None, 4.0), (1, T0 + 5 * H, T0 + 5 * H, 5.0), (2, T0 - 10 * H, T0, 6.0),
            (2, T0, T0, 7.0), (3, T0 + 2 * H, T0 + 2 * H, 8.0)]
    frame = pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "created", "value"])
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    frame["count"] = frame["value"].astype("int64")
    frame["label"] = "v" + frame["count"].astype(str)
    return frame


def test_spark_join_equals_the_duckdb_join(spark: Any, tmp_path: Path) -> None:
    stats_rows().to_parquet(tmp_path / "stats.parquet")
    pairs = pd.DataFrame({"customer_id": [1, 1, 2], "merchant_id": [5, 5, 6],
                          "event_timestamp": [T0, T0 + H, T0], "pair_value": [10, 11, 12]})
    pairs.to_parquet(tmp_path / "pairs.parquet")
    reads = [
        ViewRead("stats", FileSource("stats.parquet", created_timestamp_field="created"),
                 ("customer_id",), (Field("value", Float64), Field("count", Int64),
                                    Field("label", String)), 2 * 3_600),
        ViewRead("pairs", FileSource("pairs.parquet"), ("customer_id", "merchant_id"),
                 (Field("pair_value", Int64),), None),
    ]
    offsets = [-H, 0 * H, H / 2, H, H * 1.5, 3 * H, 3 * H + pd.Timedelta(microseconds=1),
               5 * H, 7 * H, 8 * H]
    at = [T0 + o for o in offsets for _ in (1, 2, 3, 4)]
    ids = [c for _ in offsets for c in (1, 2, 3, 4)]
    table = pa.table({ROW: np.arange(len(at)), "customer_id": ids,
                      "merchant_id": [5 if i % 2 else 6 for i in range(len(at))],
                      TS: pa.array(pd.DatetimeIndex(at).tz_localize(None).as_unit("us"))})
    expected = DuckDBOfflineStore(tmp_path, threads=1).point_in_time_join(table, reads)
    joined = point_in_time_join(spark, spark.createDataFrame(table), reads, tmp_path)
    got = joined.toArrow().sort_by(ROW).select(expected.column_names)
    assert got.to_pylist() == expected.to_pylist()
    assert expected.column("stats__value").to_pylist()[4:8] == [1.0, 7.0, None, None]
