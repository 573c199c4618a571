"""The record of batch runs in the metadata database, linked to the model version they used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shipyard.core.environment import who
from shipyard.core.errors import NotFoundError
from shipyard.core.time import to_utc, utc_now
from shipyard.metadata.db import Database
from shipyard.metadata.tables import batch_runs as br

_ERROR_CHARS = 2_000


@dataclass(frozen=True)
class BatchRun:
    """One run of a batch job (a prediction or a materialization)."""

    id: str
    kind: str  # batch_predict | materialize
    status: str  # running | succeeded | failed
    engine: str
    started_at: datetime
    job: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    input: str = ""
    output: str = ""
    features_at: str = ""
    row_count: int | None = None
    partitions: int | None = None
    duration_seconds: float | None = None
    attempts: int = 1
    error: str | None = None
    finished_at: datetime | None = None

    @property
    def model(self) -> str | None:
        """The model version as a reference, 'fraud/2'."""
        return None if self.model_name is None else f"{self.model_name}/{self.model_version}"


class RunLog:
    """Runs of one project: started, finished or failed; read back by id, model or job."""

    def __init__(self, db: Database, project: str) -> None:
        self.db = db
        self.project = project

    def start(self, run_id: str, *, kind: str, engine: str, job: str | None = None,
              model: tuple[str, int] | None = None, input: str = "", output: str = "",
              features_at: str = "") -> None:
        """Record a run as running (a rerun of the same id counts one more attempt)."""
        values = {"kind": kind, "engine": engine, "job": job, "input": input, "output": output,
                  "features_at": features_at, "status": "running", "started_at": utc_now(),
                  "finished_at": None, "error": None, "created_by": who(),
                  "model_name": model[0] if model else None,
                  "model_version": model[1] if model else None}
        with self.db.write() as conn:
            updated = conn.execute(br.update().where(*self._match(run_id))
                                   .values(**values, attempts=br.c.attempts + 1))
            if not updated.rowcount:
                conn.execute(br.insert().values(id=run_id, project=self.project, attempts=1,
                                                **values))

    def finish(self, run_id: str, *, rows: int, partitions: int | None,
               duration_seconds: float) -> None:
        """Record a run as succeeded."""
        self._end(run_id, status="succeeded", row_count=rows, partitions=partitions,
                  duration_seconds=duration_seconds)

    def fail(self, run_id: str, error: BaseException, *, duration_seconds: float) -> None:
        """Record a run as failed, with its error."""
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        self._end(run_id, status="failed", error=message[:_ERROR_CHARS],
                  duration_seconds=duration_seconds)

    def get(self, run_id: str) -> BatchRun:
        """The run `run_id`, or NotFoundError."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(br).where(*self._match(run_id))).first()
        if row is None:
            raise NotFoundError(f"Batch run {run_id!r} does not exist in project "
                                f"{self.project!r}.", hint="See `shipyard jobs list`.")
        return _record(row)

    def list(self, *, model: str | None = None, version: int | None = None,
             job: str | None = None, limit: int = 100) -> list[BatchRun]:
        """The latest runs first; filter by model name (and version) or job name."""
        query = sa.select(br).where(br.c.project == self.project)
        if model is not None:
            query = query.where(br.c.model_name == model)
        if version is not None:
            query = query.where(br.c.model_version == version)
        if job is not None:
            query = query.where(br.c.job == job)
        query = query.order_by(br.c.started_at.desc(), br.c.id).limit(limit)
        with self.db.read() as conn:
            return [_record(r) for r in conn.execute(query)]

    def _end(self, run_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(br.update().where(*self._match(run_id))
                         .values(**values, finished_at=utc_now()))

    def _match(self, run_id: str) -> list[sa.ColumnElement[bool]]:
        return [br.c.id == run_id, br.c.project == self.project]


def _record(row: Any) -> BatchRun:
    return BatchRun(
        id=row.id, kind=row.kind, status=row.status, engine=row.engine,
        started_at=to_utc(row.started_at), job=row.job, model_name=row.model_name,
        model_version=row.model_version, input=row.input, output=row.output,
        features_at=row.features_at, row_count=row.row_count, partitions=row.partitions,
        duration_seconds=row.duration_seconds, attempts=row.attempts, error=row.error,
        finished_at=None if row.finished_at is None else to_utc(row.finished_at))
