"""The skew check on SQLite and Redis: zero after materialization, every mismatch otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.features.online import NO_CREATED, OnlineRow, encode_key
from shipyard.features.skew import same_value
from tests.contract._online import NOW, H, write_stats


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """The skew check does not depend on the metadata database: SQLite only."""
    return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"


def test_no_skew_after_materialization(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(k, NOW - H / k, float(k)) for k in range(1, 30)])
    online_project.features.materialize(None, NOW)
    report = online_project.features.check_skew(sample=20)
    assert report.is_consistent, report.mismatches
    assert report.entities == 21  # 20 of the 29 stats keys, the one pairs key
    assert report.values_compared == 20 * 9 + 1
    assert report.mismatches_by_feature()["stats:value"] == 0


def test_every_mismatch_is_reported(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(1, NOW - H, 1.0), (2, NOW - H, 2.0)])
    online_project.features.materialize(None, NOW, views=["stats"])
    online_project.features.online.write("stats", [OnlineRow(
        encode_key([2]), int((NOW - H / 2).timestamp() * 1e6), NO_CREATED, {"value": 2.5})])
    report = online_project.features.check_skew(sample=10, features=["stats:value",
                                                                     "stats:count",
                                                                     "pairs:pair_value"])
    assert report.features == ["stats:value", "stats:count", "pairs:pair_value"]
    assert report.mismatches_by_feature() == {"stats:value": 1, "stats:count": 1,
                                              "pairs:pair_value": 1}
    by_feature = {m.feature: m for m in report.mismatches}
    assert (by_feature["stats:value"].entity, by_feature["stats:value"].online,
            by_feature["stats:value"].offline) == ({"customer_id": 2}, 2.5, 2.0)
    assert by_feature["stats:count"].online is None and by_feature["stats:count"].offline == 2
    pairs = by_feature["pairs:pair_value"]  # never materialized
    assert pairs.entity == {"customer_id": 1, "shop_code": "a"} and pairs.online is None


def test_a_feature_service_checks_its_stored_views(online_project: sy.Project) -> None:
    online_project.features.materialize(None, NOW)
    report = online_project.features.check_skew(feature_service="svc")
    # py_ratio's stored inputs (value, count) are compared too
    assert report.is_consistent and report.features == ["stats:value", "stats:name",
                                                        "stats:count", "pairs:pair_value"]


@pytest.mark.parametrize(("a", "b", "same"), [
    (None, None, True), (None, float("nan"), True), (None, pd.NA, True), (None, pd.NaT, True),
    (1.0, 1.0 + 1e-9, True), (1.0, 1.001, False), (np.float32(0.1), 0.1, True),
    (1, np.int64(1), True), (1, None, False), ("a", "a", True), ("a", "b", False),
    ([1, 2], np.array([1, 2]), True), ([1.0], [1.1], False), ([1], [1, 2], False),
    (datetime(2026, 1, 1, tzinfo=UTC), pd.Timestamp("2026-01-01", tz="UTC"), True),
    (True, np.True_, True),
])
def test_same_value(a: object, b: object, same: bool) -> None:
    assert same_value(a, b) is same
