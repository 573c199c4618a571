"""Shared definitions and data helpers of the online-store contract tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

import shipyard as sy
from shipyard.core.errors import BackendUnavailable
from shipyard.features.online import OnlineRow, OnlineStore, StoredRow

NOW = pd.Timestamp.now(tz="UTC").floor("s")
H = pd.Timedelta(hours=1)

# `stats` takes live rows from a push source; `pairs` has a composite (int, str) key and no
# ttl; `archive` is offline only; two on-demand views, one per mode, read stats and a request.
DEFINITIONS = """
from datetime import timedelta
import pandas as pd
import shipyard as sy

customer = sy.Entity("customer", join_keys=["customer_id"])
shop = sy.Entity("shop", join_keys=["shop_code"])
stats_push = sy.PushSource("stats_push", batch_source=sy.FileSource(
    "stats.parquet", created_timestamp_field="created"))
stats = sy.FeatureView(
    name="stats", entities=[customer], ttl=timedelta(hours=2), source=stats_push,
    schema=[sy.Field("value", sy.Float64), sy.Field("count", sy.Int64),
            sy.Field("name", sy.String), sy.Field("flag", sy.Bool),
            sy.Field("tags", sy.Array(sy.Int64)), sy.Field("scores", sy.Array(sy.Float64)),
            sy.Field("seen", sy.UnixTimestamp), sy.Field("small", sy.Int32),
            sy.Field("single", sy.Float32)])
pairs = sy.FeatureView(
    name="pairs", entities=[customer, shop], ttl=None,
    schema=[sy.Field("pair_value", sy.Int64)],
    source=sy.FileSource("pairs.parquet", field_mapping={"pv": "pair_value"}))
archive = sy.FeatureView(
    name="archive", entities=[customer], online=False,
    schema=[sy.Field("old", sy.Int64)], source=sy.FileSource("archive.parquet"))
txn = sy.RequestSource("txn", [sy.Field("amount", sy.Float64)])

@sy.on_demand_feature_view(sources=[stats[["value", "count"]], txn],
                           schema=[sy.Field("ratio", sy.Float64), sy.Field("big", sy.Bool)],
                           mode="python")
def py_ratio(inputs):
    return {"ratio": [a / v if v else None for a, v in zip(inputs["amount"], inputs["value"])],
            "big": [a > 100 for a in inputs["amount"]]}

@sy.on_demand_feature_view(sources=[stats[["value"]], txn],
                           schema=[sy.Field("scaled", sy.Float64)])
def pd_scaled(df):
    return pd.DataFrame({"scaled": df["amount"] * df["value"]})

svc = sy.FeatureService("svc", [stats[["value", "name"]], py_ratio[["ratio"]], pairs])
"""

STATS_FEATURES = ["value", "count", "name", "flag", "tags", "scores", "seen", "small", "single"]


def stats_frame(rows: Sequence[tuple[int, pd.Timestamp, float]],
                created: pd.Timestamp | None = None) -> pd.DataFrame:
    """(customer_id, event time, value) rows of `stats`; the other features derive from value."""
    frame = pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "value"])
    n = len(frame)
    frame["created"] = frame["event_timestamp"] if created is None else created
    frame["count"] = frame["value"].astype("int64")
    frame["name"] = [f"v{v:g}" for v in frame["value"]]
    frame["flag"] = frame["value"] > 1
    frame["tags"] = [[int(v), int(v) + 1] for v in frame["value"]]
    frame["scores"] = [[v / 2] for v in frame["value"]]
    frame["seen"] = frame["event_timestamp"]
    frame["small"] = frame["count"].astype("int32")
    frame["single"] = frame["value"].astype("float32")
    assert len(frame) == n
    return frame


def write_stats(root: Path, rows: Sequence[tuple[int, pd.Timestamp, float]]) -> None:
    """Replace the batch history of `stats`."""
    stats_frame(rows).to_parquet(root / "stats.parquet")


def write_sources(root: Path) -> None:
    """Initial data of every source: one stats row for customer 1, one pair, one archive row."""
    write_stats(root, [(1, NOW - H, 1.0)])
    pd.DataFrame({"customer_id": [1], "shop_code": ["a"], "event_timestamp": [NOW - 100 * H],
                  "pv": [7]}).to_parquet(root / "pairs.parquet")
    pd.DataFrame({"customer_id": [1], "event_timestamp": [NOW - H],
                  "old": [3]}).to_parquet(root / "archive.parquet")


def online(project: sy.Project, features: list[str], rows: list[dict[str, Any]],
           **options: Any) -> dict[str, list[Any]]:
    """project.features.get_online_features, shorter."""
    return project.features.get_online_features(features=features, entity_rows=rows, **options)


class FailingStore:
    """An online store that fails after `ok_writes` successful writes (an injected crash)."""

    def __init__(self, inner: OnlineStore, ok_writes: int) -> None:
        self.inner = inner
        self.ok_writes = ok_writes
        self.writes = 0

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        if self.writes >= self.ok_writes:
            raise BackendUnavailable("injected failure", hint="rerun")
        self.writes += 1
        return self.inner.write(view, rows)

    def read(self, view: str, keys: Sequence[bytes]) -> list[StoredRow | None]:
        return self.inner.read(view, keys)

    def drop(self, view: str) -> None:
        self.inner.drop(view)

    def newest_event_times(self) -> dict[str, datetime]:
        return self.inner.newest_event_times()

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()
