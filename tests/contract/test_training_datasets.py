"""Training datasets on SQLite and PostgreSQL metadata: lineage, byte-identical reload,
deterministic content hashes, and the errors for bad labels and ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from tests.conftest import ProjectFactory

T0 = pd.Timestamp("2026-03-01", tz="UTC")
DEFINITIONS = """
from datetime import timedelta
import shipyard as sy
customer = sy.Entity("customer", join_keys=["customer_id"])
stats = sy.FeatureView(
    name="stats", entities=[customer], ttl=timedelta(days=1),
    schema=[sy.Field("value", sy.Float64), sy.Field("count", sy.Int64),
            sy.Field("segment", sy.String)],
    source=sy.FileSource("stats.parquet"))
svc = sy.FeatureService("svc", [stats])
small = sy.FeatureService("small", [stats[["value"]]])
"""


def write_tiny_data(root: Path, *, labels: int = 400, seed: int = 0) -> Path:
    """Ten days of 6-hourly stats for 30 customers, and labelled events; the labels path.

    Customers divisible by 3 have a higher `value` and are mostly positive; events in the
    12 hours before the first snapshot have no features (nulls).
    """
    rng = np.random.default_rng(seed)
    customers = np.arange(1, 31)
    snapshots = T0 + pd.to_timedelta(np.arange(0, 240, 6), unit="h")
    grid = pd.MultiIndex.from_product([customers, snapshots],
                                      names=["customer_id", "event_timestamp"]).to_frame(False)
    risky = (grid["customer_id"] % 3 == 0).to_numpy()
    grid["value"] = risky * 1.5 + rng.normal(size=len(grid))
    grid["count"] = rng.integers(0, 10, len(grid))
    grid["segment"] = np.where(grid["customer_id"] % 2 == 0, "even", "odd")
    grid.to_parquet(root / "stats.parquet")
    who = rng.choice(customers, labels)
    offsets = pd.to_timedelta(rng.integers(0, 10 * 86_400, labels), unit="s")
    positive = np.where(who % 3 == 0, rng.random(labels) < 0.7, rng.random(labels) < 0.1)
    frame = pd.DataFrame({
        "customer_id": who, "event_timestamp": T0 - pd.Timedelta(hours=12) + offsets,
        "amount": rng.gamma(2.0, 30.0, labels).round(2), "is_fraud": positive.astype(int)})
    frame["label_timestamp"] = frame["event_timestamp"] + pd.to_timedelta(
        rng.integers(0, 2 * 86_400, labels), unit="s")
    path = root / "labels.parquet"
    frame.to_parquet(path)
    return path


@pytest.fixture
def project(make_project: ProjectFactory) -> sy.Project:
    root = make_project(DEFINITIONS)
    write_tiny_data(root)
    project = sy.Project.load(root)
    project.apply()
    return project


def test_a_dataset_records_its_lineage_and_reloads_byte_identical(project: sy.Project) -> None:
    labels = project.root / "labels.parquet"
    ds = project.training.dataset(labels, feature_service="svc", label="is_fraud", name="fraud")
    frame = pd.read_parquet(labels)
    assert (ds.feature_service, ds.definitions_version, ds.label, ds.timestamp, ds.name) == (
        "svc", 1, "is_fraud", "event_timestamp", "fraud")
    assert ds.source["path"] == str(labels.resolve()) and len(ds.source["sha256"]) == 64
    assert ds.row_count == len(frame) == 400
    assert (ds.start, ds.end) == (frame.event_timestamp.min(), frame.event_timestamp.max())
    assert ds.feature_columns == ("value", "count", "segment")
    assert ds.columns == (*frame.columns, "value", "count", "segment")
    snapshot = ds.to_pandas()
    pd.testing.assert_frame_equal(snapshot[frame.columns], frame)
    assert snapshot["value"].isna().any() and snapshot["value"].notna().mean() > 0.9

    again = sy.Project.load(project.root).training.get_dataset(ds.id)
    assert again == ds and again.read_bytes() == ds.read_bytes()
    assert project.artifacts.get_bytes(again.artifact) == ds.read_bytes()
    assert ds.content_sha256 == ds.artifact.sha256
    assert [d.id for d in project.training.list_datasets()] == [ds.id]
    assert project.training.list_datasets(feature_service="small") == []


def test_the_same_inputs_give_the_same_content_hash_and_id(project: sy.Project) -> None:
    labels = pd.read_parquet(project.root / "labels.parquet")
    first = project.training.dataset(labels, feature_service="svc", label="is_fraud")
    second = project.training.dataset(labels.copy(), feature_service="svc", label="is_fraud")
    assert second.id == first.id and second.content_sha256 == first.content_sha256
    assert second.created_at == first.created_at  # stored once
    assert set(first.source) == {"frame_sha256"}
    fewer = project.training.dataset(labels.head(100), feature_service="svc", label="is_fraud")
    other = project.training.dataset(labels, feature_service="small", label="is_fraud")
    assert len({first.content_sha256, fewer.content_sha256, other.content_sha256}) == 3
    assert fewer.row_count == 100 and other.feature_columns == ("value",)
    assert len(project.training.list_datasets()) == 3


def test_bad_labels_and_unknown_ids_are_clear_errors(project: sy.Project) -> None:
    labels = pd.read_parquet(project.root / "labels.parquet")
    with pytest.raises(sy.InvalidInputError, match="no label column 'fraud'"):
        project.training.dataset(labels, feature_service="svc", label="fraud")
    with pytest.raises(sy.InvalidInputError, match="label 'value' is also an input"):
        project.training.dataset(labels.assign(value=1.0), feature_service="svc", label="value")
    with pytest.raises(sy.NotFoundError, match="Dataset 'nope' does not exist") as info:
        project.training.get_dataset("nope")
    assert "list_datasets" in (info.value.hint or "")
