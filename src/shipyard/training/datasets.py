"""Training datasets: a point-in-time join stored as a Parquet snapshot, with its lineage.

A dataset's id is a hash of its lineage (project, name, feature service, definitions
version, entity source, label, content hash): building the same dataset twice gives the same
id and stores nothing new.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipyard.artifacts import ArtifactRef, ArtifactStore
from shipyard.core.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.core.hashing import canonical_json, spec_hash
from shipyard.core.time import to_utc, utc_now
from shipyard.metadata.db import Database
from shipyard.metadata.tables import datasets as dt
from shipyard.metadata.upsert import upsert
from shipyard.training.snapshot import frame_sha256, parquet_bytes, read_parquet_bytes

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.features.store import FeatureStore
    from shipyard.models import ServiceInputs

_NAME = re.compile(r"[^\x00-\x1f]{0,200}")


@dataclass(frozen=True)
class TrainingDataset:
    """A stored training set: lineage attributes, and its snapshot via `to_pandas()`."""

    id: str
    name: str
    created_at: datetime
    feature_service: str
    definitions_version: int
    label: str | None
    timestamp: str  # the entity timestamp column
    source: dict[str, str]  # {"path", "sha256"} of a Parquet file, or {"frame_sha256"}
    row_count: int
    start: datetime | None  # the earliest and latest entity timestamps
    end: datetime | None
    artifact: ArtifactRef  # the Parquet snapshot; its sha256 is the content hash
    columns: tuple[str, ...]
    feature_columns: tuple[str, ...]  # the service's inputs, in the model signature's order
    _read: Callable[[ArtifactRef], bytes] = field(repr=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def content_sha256(self) -> str:
        """The sha256 of the snapshot's Parquet bytes."""
        return self.artifact.sha256

    def read_bytes(self) -> bytes:
        """The snapshot's Parquet bytes, checked against the content hash."""
        if "bytes" not in self._cache:
            self._cache["bytes"] = self._read(self.artifact)
        return self._cache["bytes"]  # type: ignore[no-any-return]

    def to_pandas(self) -> pd.DataFrame:
        """The snapshot as a new DataFrame: entity columns, label, then the features."""
        return read_parquet_bytes(self.read_bytes())


class DatasetStore:
    """Training datasets of one project: rows in the metadata DB, snapshots as artifacts."""

    def __init__(self, db: Database, project: str, artifacts: ArtifactStore, *,
                 features: Callable[[], FeatureStore],
                 service_inputs: Callable[[str], ServiceInputs]) -> None:
        self.db = db
        self.project = project
        self.artifacts = artifacts
        self._features = features
        self._service_inputs = service_inputs

    def create_dataset(self, entity_df: pd.DataFrame | str | Path, *, feature_service: str,
                       label: str | None = None, name: str | None = None,
                       timestamp: str | None = None) -> TrainingDataset:
        """Join the service's features point-in-time to `entity_df` and store the result."""
        from shipyard.features.retrieval import read_entity_frame, timestamp_column

        name = _check_name(name or "")
        entities = read_entity_frame(entity_df)
        ts_column = timestamp_column(entities, timestamp)
        features = self._features()
        version = features.catalog()[0]
        inputs = self._service_inputs(feature_service)
        feature_columns = tuple(c.name for c in inputs.columns)
        _check_label(label, entities, feature_columns)
        frame = features.get_historical_features(entities, feature_service=feature_service,
                                                 timestamp_column=ts_column)
        if self._service_inputs(feature_service).definitions_version != version:
            raise ConflictError("The definitions changed while the dataset was being built.",
                                hint="Build it again.")
        data = parquet_bytes(frame)
        lineage = {"feature_service": feature_service, "definitions_version": version,
                   "label": label, "timestamp": ts_column, "source": _source(entity_df, entities),
                   "feature_columns": list(feature_columns), **_describe(frame, ts_column, data)}
        dataset_id = spec_hash({"project": self.project, "name": name, **lineage})[:32]
        artifact = self.artifacts.put_bytes(data, name=_artifact_name(dataset_id))
        with self.db.write() as conn:
            upsert(conn, dt, [{"id": dataset_id, "project": self.project, "name": name,
                               "created_at": utc_now(), "spec": canonical_json(lineage),
                               "artifact_sha256": artifact.sha256,
                               "row_count": len(frame)}], keys=("id",), update=False)
            row = conn.execute(sa.select(dt).where(dt.c.id == dataset_id)).one()
        record = self._record(row)
        record._cache["bytes"] = data
        return record

    def get_dataset(self, dataset_id: str) -> TrainingDataset:
        """The dataset with this id."""
        found = self._select(dt.c.id == str(dataset_id).strip().lower())
        if not found:
            raise NotFoundError(f"Dataset {dataset_id!r} does not exist in project "
                                f"{self.project!r}.",
                                hint="See project.training.list_datasets() for the ids.")
        return found[0]

    def list_datasets(self, *, name: str | None = None,
                      feature_service: str | None = None) -> list[TrainingDataset]:
        """Datasets, newest first; filter by name or feature service."""
        found = self._select(sa.true() if name is None else dt.c.name == name)
        return [d for d in found if feature_service in (None, d.feature_service)]

    def _select(self, where: sa.ColumnElement[bool]) -> list[TrainingDataset]:
        query = (sa.select(dt).where(dt.c.project == self.project, where)
                 .order_by(dt.c.created_at.desc(), dt.c.id))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [self._record(r) for r in rows]

    def _record(self, row: Any) -> TrainingDataset:
        spec = json.loads(row.spec)
        return TrainingDataset(
            id=row.id, name=row.name, created_at=to_utc(row.created_at),
            feature_service=spec["feature_service"],
            definitions_version=spec["definitions_version"], label=spec["label"],
            timestamp=spec["timestamp"], source=spec["source"], row_count=row.row_count,
            start=_from_iso(spec["start"]), end=_from_iso(spec["end"]),
            artifact=ArtifactRef(row.artifact_sha256, spec["size"], _artifact_name(row.id)),
            columns=tuple(spec["columns"]), feature_columns=tuple(spec["feature_columns"]),
            _read=self.artifacts.get_bytes)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(f"Dataset name {name!r} is not up to 200 printable characters.",
                                hint="Name it e.g. 'fraud-2026-03'.")
    return name


def _check_label(label: str | None, entities: pd.DataFrame, features: tuple[str, ...]) -> None:
    if label is None:
        return
    if label not in entities.columns:
        raise InvalidInputError(f"The entity frame has no label column {label!r}.",
                                hint=f"Its columns are {list(entities.columns)}.")
    if label in features:
        raise InvalidInputError(f"The label {label!r} is also an input of the feature service: "
                                "the model would see the answer.",
                                hint="Pick another label column, or remove it from the service.")


def _source(given: object, entities: pd.DataFrame) -> dict[str, str]:
    if isinstance(given, str | Path):
        from shipyard.artifacts.names import hash_file

        path = Path(given).resolve()
        return {"path": str(path), "sha256": hash_file(path)[0]}
    return {"frame_sha256": frame_sha256(entities)}


def _describe(frame: pd.DataFrame, ts_column: str, data: bytes) -> dict[str, Any]:
    """Rows, time range, columns and content hash of a snapshot."""
    times = frame[ts_column]
    return {"row_count": len(frame), "columns": [str(c) for c in frame.columns],
            "start": _iso(to_utc(times.min())) if len(frame) else None,
            "end": _iso(to_utc(times.max())) if len(frame) else None,
            "content_sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "format": "parquet"}


def _artifact_name(dataset_id: str) -> str:
    return f"datasets/{dataset_id}.parquet"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else to_utc(datetime.fromisoformat(value))
