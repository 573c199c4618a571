"""A live run: log params, metrics, tags and artifacts; a `with` block ends it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import sqlalchemy as sa

from shipyard.artifacts import ArtifactRef, check_name
from shipyard.core.errors import ConflictError
from shipyard.core.time import to_utc, utc_now
from shipyard.metadata.tables import run_artifacts, run_metrics, run_params, run_tags, runs
from shipyard.metadata.upsert import upsert
from shipyard.tracking.records import RunInfo, Status, check_key, metric_value, text_values

if TYPE_CHECKING:
    from shipyard.tracking.store import Tracking

ERROR_TAG = "shipyard.error"


class Run:
    """One training run; use it as `with tracking.start_run(...) as run:`."""

    def __init__(self, tracking: Tracking, run_id: str, name: str, experiment: str,
                 git_commit: str | None) -> None:
        self._tracking = tracking
        self.id = run_id
        self.name = name
        self.experiment = experiment
        self.git_commit = git_commit
        self.status: Status = "running"
        self._steps: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r}, status={self.status!r})"

    def log_param(self, key: str, value: object) -> None:
        """Record one input setting; a param cannot change once logged."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record input settings (stored as text); re-logging the same value is fine."""
        values = text_values("param", params)
        with self._tracking.db.write() as conn:
            query = sa.select(run_params.c.key, run_params.c.value).where(
                run_params.c.run_id == self.id, run_params.c.key.in_(list(values)))
            for key, old in conn.execute(query):
                if old != values[key]:
                    raise ConflictError(
                        f"Param {key!r} of run {self.id} is already {old!r}; got {values[key]!r}.",
                        hint="Params are fixed inputs: log changing values as metrics or tags.")
            upsert(conn, run_params, [{"run_id": self.id, "key": k, "value": v}
                                      for k, v in values.items()], keys=("run_id", "key"),
                   update=False)

    def log_metric(self, key: str, value: float, *, step: int | None = None,
                   timestamp: datetime | None = None) -> None:
        """Record one value of a metric; `step` defaults to the next step of that key."""
        self.log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None,
                    timestamp: datetime | None = None) -> None:
        """Record values of several metrics at one step and time."""
        when = utc_now() if timestamp is None else to_utc(timestamp)
        rows = []
        for key, raw in metrics.items():
            value = metric_value(check_key("metric", key), raw)
            at = self._steps.get(key, -1) + 1 if step is None else int(step)
            self._steps[key] = max(at, self._steps.get(key, -1))
            rows.append({"run_id": self.id, "key": key, "step": at, "timestamp": when,
                         "value": None if math.isnan(value) else value})
        if rows:
            with self._tracking.db.write() as conn:
                conn.execute(run_metrics.insert(), rows)

    def set_tag(self, key: str, value: object) -> None:
        """Set one tag (tags may change)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set several tags at once."""
        values = text_values("tag", tags)
        with self._tracking.db.write() as conn:
            upsert(conn, run_tags, [{"run_id": self.id, "key": k, "value": v}
                                    for k, v in values.items()], keys=("run_id", "key"))

    def log_artifact(self, path: str | Path, *, name: str | None = None) -> ArtifactRef:
        """Store a file or folder in the artifact store and attach it to this run."""
        path = Path(path)
        store = self._tracking.artifacts
        ref = (store.put_dir if path.is_dir() else store.put_file)(
            path, name=check_name(name) if name else None)
        with self._tracking.db.write() as conn:
            upsert(conn, run_artifacts, [{"run_id": self.id, "name": ref.name, "kind": ref.kind,
                                          "sha256": ref.sha256, "size": ref.size,
                                          "created_at": utc_now()}], keys=("run_id", "name"))
        return ref

    def end(self, status: Status = "finished") -> None:
        """Mark the run finished (or failed) and stamp its end time."""
        if self.status != "running":
            raise ConflictError(f"Run {self.id} has already ended ({self.status}).",
                                hint="Start a new run to record more training.")
        with self._tracking.db.write() as conn:
            conn.execute(runs.update().where(runs.c.id == self.id).values(
                status=status, end_time=utc_now()))
        self.status = status

    def info(self) -> RunInfo:
        """The run as stored now."""
        return self._tracking.get_run(self.id)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.status != "running":
            return
        if exc is not None:
            self.set_tag(ERROR_TAG, f"{type(exc).__name__}: {exc}"[:1000])
            self.end("failed")
        else:
            self.end("finished")
