"""What the registry returns: model versions with lineage, models, and feature-service inputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shipyard.artifacts import ArtifactRef
from shipyard.core.time import to_utc
from shipyard.models.signature import Column, Signature


@dataclass(frozen=True)
class ServiceInputs:
    """What a feature service gives a model: typed columns, and the view features behind them."""

    definitions_version: int
    columns: tuple[Column, ...]  # the service's features, then the request fields
    features: tuple[tuple[str, str], ...]  # every (view, feature) it reads, on-demand inputs too


@dataclass(frozen=True)
class ModelVersion:
    """One immutable registered version (description, tags, aliases and archiving may change)."""

    name: str
    version: int
    created_at: datetime
    created_by: str
    flavor: str
    artifact: ArtifactRef
    signature: Signature
    has_onnx: bool
    run_id: str | None
    dataset_id: str | None
    feature_service: str | None
    definitions_version: int | None
    git_commit: str | None
    description: str = ""
    archived: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    features: tuple[tuple[str, str], ...] = ()  # lineage: (view, feature) pairs consumed

    @property
    def ref(self) -> str:
        """`name/version`, the reference that always means this version."""
        return f"{self.name}/{self.version}"

    @property
    def views(self) -> list[str]:
        """The feature views (and on-demand views) this version consumes."""
        return sorted({view for view, _ in self.features})


@dataclass(frozen=True)
class RegisteredModel:
    """A model name with its versions summarised."""

    name: str
    created_at: datetime
    version_count: int
    latest_version: int | None  # the newest version that is not archived
    aliases: dict[str, int] = field(default_factory=dict)


def version_from_row(row: Any, extra: dict[str, list[tuple[str, str]]]) -> ModelVersion:
    """A ModelVersion from a `model_versions` row and its tags, aliases and features."""
    return ModelVersion(
        name=row.name, version=row.version, created_at=to_utc(row.created_at),
        created_by=row.created_by, flavor=row.flavor,
        artifact=ArtifactRef(row.artifact_sha256, row.artifact_size, row.name, "dir"),
        signature=Signature.from_spec(json.loads(row.signature)), has_onnx=bool(row.has_onnx),
        run_id=row.run_id, dataset_id=row.dataset_id, feature_service=row.feature_service,
        definitions_version=row.definitions_version, git_commit=row.git_commit,
        description=row.description, archived=bool(row.archived),
        tags=dict(extra.get("tags", [])),
        aliases=tuple(sorted(a for a, _ in extra.get("aliases", []))),
        features=tuple(sorted(extra.get("features", []))))
