"""What tracking returns: experiments, runs with their params/metrics/tags, metric points."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shipyard.artifacts import ArtifactRef
from shipyard.core.errors import InvalidInputError

Status = Literal["running", "finished", "failed"]
STATUSES: tuple[Status, ...] = ("running", "finished", "failed")
_KEY = re.compile(r"[^\x00-\x1f]{1,250}")


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    name: str
    created_at: datetime
    run_count: int = 0


@dataclass(frozen=True)
class Metric:
    """One logged value of a metric."""

    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class RunInfo:
    """A run as stored: attributes, params, latest metric values, tags and artifacts."""

    id: str
    experiment: str
    name: str
    status: Status
    start_time: datetime
    end_time: datetime | None
    git_commit: str | None
    git_dirty: bool | None
    environment: dict[str, Any]
    created_by: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, ArtifactRef] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to end (None while running)."""
        return None if self.end_time is None else (self.end_time - self.start_time).total_seconds()

    def as_mapping(self) -> dict[str, Any]:
        """Attributes plus `params`, `metrics` and `tags` dicts, for filtering and sorting."""
        return {"id": self.id, "experiment": self.experiment, "name": self.name,
                "status": self.status, "start_time": self.start_time,
                "end_time": self.end_time, "git_commit": self.git_commit,
                "params": self.params, "metrics": self.metrics, "tags": self.tags, "run": self}


def check_key(kind: str, key: object) -> str:
    """A param, metric or tag key: 1-250 printable characters."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInputError(f"{kind} key {key!r} is not 1-250 printable characters.",
                                hint=f"Use a short name such as 'learning_rate' for the {kind}.")
    return key


def metric_value(key: str, value: object) -> float:
    """A metric value as float; text and other non-numbers are refused."""
    if isinstance(value, str | bytes):
        raise InvalidInputError(f"Metric {key!r} got text {value!r}.",
                                hint="Log numbers as metrics and text as params or tags.")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"Metric {key!r} got {value!r}, which is not a number.",
                                hint="Log numbers as metrics and text as params or tags.") from None


def text_values(kind: str, values: Mapping[str, object]) -> dict[str, str]:
    """Params or tags as text, keys checked."""
    return {check_key(kind, k): str(v) for k, v in values.items()}
