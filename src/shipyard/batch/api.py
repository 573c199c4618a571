"""`project.batch`: batch prediction (local engine or Spark), its run records, and jobs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.batch.engines import BatchEngine, Progress, engine_class
from shipyard.batch.jobs import JobDefinition, check_unique
from shipyard.batch.leases import Lease, Leases
from shipyard.batch.plan import DEFAULT_CHUNK_ROWS, PredictOptions, plan_predict
from shipyard.batch.runs import BatchRun, RunLog
from shipyard.core.errors import ConflictError, NotFoundError
from shipyard.core.time import utc_now
from shipyard.features.definitions import Definition
from shipyard.features.store import FeatureStore
from shipyard.metadata.db import Database
from shipyard.models import ModelRegistry

LEASE_SECONDS = 3_600.0


@dataclass(frozen=True)
class BatchResult:
    """What a batch prediction did."""

    run_id: str
    model: str  # the version used, 'fraud/2'
    output: Path
    rows: int
    partitions: int
    skipped_partitions: int  # done by an earlier, interrupted attempt of this run
    seconds: float
    engine: str
    peak_rss_bytes: int | None = None
    cpu_seconds: float | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


class Batch:
    """Batch prediction over the project's models and features, and its scheduled jobs."""

    def __init__(self, db: Database, project: str, root: Path, *, features: FeatureStore,
                 models: ModelRegistry, definitions: Callable[[], Sequence[Definition]],
                 jobs: Sequence[JobDefinition] = (),
                 engine_options: dict[str, dict[str, Any]] | None = None) -> None:
        self.db = db
        self.project = project
        self.root = root
        self.features = features
        self.models = models
        self._definitions = definitions
        self._jobs = check_unique(list(jobs))
        self._engine_options = engine_options or {}
        self._engines: dict[str, BatchEngine] = {}
        self.runs = RunLog(db, project)

    # -- prediction ----------------------------------------------------------------------

    def predict(self, model: str, entities: Any, *, output: str | Path,
                engine: str = "local", features_at: datetime | str = "row",
                run_id: str | None = None, overwrite: bool = False,
                chunk_rows: int = DEFAULT_CHUNK_ROWS, keep_columns: Sequence[str] = (),
                timestamp_column: str | None = None, progress: Progress | None = None,
                job: str | None = None) -> BatchResult:
        """Score every entity row with `model` and write Parquet partitions to `output`.

        Args:
            model: 'fraud@champion', 'fraud/3' or 'fraud' (latest).
            entities: a DataFrame, or a Parquet file or folder, with the feature service's
                join keys, request data and (unless `features_at` is a time) a timestamp.
            output: a folder; it must not exist unless `overwrite` (or it holds the
                unfinished run `run_id`, which is then finished).
            engine: 'local' (a process per core) or 'spark'.
            features_at: 'row' (each row's own timestamp), 'now' or a time for every row.
            run_id: names the run; rerun with the same id to finish an interrupted run.
            chunk_rows: rows per partition (the unit of progress, memory and resuming).
            keep_columns: input columns copied to the output, e.g. a transaction id.
            timestamp_column: the input's timestamp column, if not 'event_timestamp'.
            progress: called with (rows done, rows in total).
        """
        options = PredictOptions(model=model, output=Path(output).resolve(), engine=engine,
                                 features_at=features_at, run_id=run_id, overwrite=overwrite,
                                 chunk_rows=chunk_rows, keep_columns=tuple(keep_columns),
                                 timestamp_column=timestamp_column)
        runner = self._engine(engine)
        plan = plan_predict(options, entities, models=self.models,
                            catalog=self.features.catalog, definitions=self._definitions,
                            describe_source=self.features.offline.describe_source)
        self.runs.start(plan.run_id, kind="batch_predict", engine=engine, job=job,
                        model=(plan.version.name, plan.version.version),
                        input=plan.input.description, output=str(plan.output),
                        features_at=plan.header["features_at"])
        started = time.perf_counter()
        try:
            report = runner.run(plan, progress)
        except BaseException as exc:
            self.runs.fail(plan.run_id, exc, duration_seconds=time.perf_counter() - started)
            raise
        seconds = time.perf_counter() - started
        self.runs.finish(plan.run_id, rows=report.rows, partitions=report.partitions,
                         duration_seconds=seconds)
        return BatchResult(run_id=plan.run_id, model=plan.version.ref, output=plan.output,
                           rows=report.rows, partitions=report.partitions,
                           skipped_partitions=report.skipped_partitions, seconds=seconds,
                           engine=engine, peak_rss_bytes=report.peak_rss_bytes,
                           cpu_seconds=report.cpu_seconds)

    def _engine(self, name: str) -> BatchEngine:
        if name not in self._engines:
            context = {"local": {"offline": self.features.offline},
                       "spark": {"root": self.root}}.get(name, {})
            options = self._engine_options.get(name, {})
            self._engines[name] = engine_class(name)(**context, **options)
        return self._engines[name]

    def get_run(self, run_id: str) -> BatchRun:
        """The record of run `run_id`."""
        return self.runs.get(run_id)

    def list_runs(self, *, model: str | None = None, job: str | None = None,
                  limit: int = 100) -> list[BatchRun]:
        """Recent runs, newest first; filter by model name or job name."""
        return self.runs.list(model=model, job=job, limit=limit)

    # -- jobs ----------------------------------------------------------------------------

    def list_jobs(self) -> list[JobDefinition]:
        """The jobs defined in shipyard.yaml."""
        return list(self._jobs.values())

    def get_job(self, name: str) -> JobDefinition:
        """The job called `name`."""
        if name not in self._jobs:
            raise NotFoundError(f"Job {name!r} is not defined.",
                                hint=f"Known jobs: {sorted(self._jobs)}. Define it under `jobs:` "
                                     "in shipyard.yaml.")
        return self._jobs[name]

    def leases(self, holder: str | None = None) -> Leases:
        """Job leases, taken in the name of `holder` (default: this process)."""
        return Leases(self.db, self.project, holder)

    def run_job(self, name: str, *, scheduled_at: datetime | None = None,
                lease: Lease | None = None, progress: Progress | None = None,
                lease_seconds: float = LEASE_SECONDS) -> BatchRun:
        """Run job `name` now (taking its lease unless given one); return its run record."""
        job = self.get_job(name)
        leases = self.leases(lease.holder if lease else None)
        held = lease or leases.acquire(name, seconds=lease_seconds)
        if held is None:
            state = leases.state(name)
            raise ConflictError(f"Job {name!r} is running in {state.holder} (lease until "
                                f"{state.expires_at}).",
                                hint="Wait for it to finish; a lease of a process that died "
                                     "expires by itself.")
        heartbeat = _Heartbeat(leases, held, lease_seconds, progress)
        try:
            at = scheduled_at or utc_now()
            if job.kind == "materialize":
                return self._materialize(job, at)
            return self._predict_job(job, at, heartbeat)
        finally:
            if lease is None:
                leases.release(held)

    def _predict_job(self, job: JobDefinition, at: datetime, progress: Progress) -> BatchRun:
        options = dict(job.options)
        features_at = options.pop("features_at", "row")
        if features_at == "scheduled":
            features_at = at
        run_id = f"{job.name[:40]}-{at:%Y%m%dT%H%M%SZ}"  # a rerun of this tick resumes it
        output = str(job.output).format(date=f"{at:%Y-%m-%d}", time=f"{at:%Y%m%dT%H%M%SZ}",
                                        run_id=run_id)
        result = self.predict(job.model or "", self._path(job.input or ""),
                              output=self._path(output), engine=job.engine,
                              features_at=features_at, run_id=run_id, progress=progress,
                              job=job.name, **options)
        return self.runs.get(result.run_id)

    def _materialize(self, job: JobDefinition, at: datetime) -> BatchRun:
        run_id = uuid.uuid4().hex
        views = job.options.get("views")
        self.runs.start(run_id, kind="materialize", engine="local", job=job.name,
                        features_at=at.isoformat(), output="online store")
        started = time.perf_counter()
        try:
            results = self.features.materialize_incremental(at, views=views)
        except BaseException as exc:
            self.runs.fail(run_id, exc, duration_seconds=time.perf_counter() - started)
            raise
        self.runs.finish(run_id, rows=sum(r.rows for r in results), partitions=len(results),
                         duration_seconds=time.perf_counter() - started)
        return self.runs.get(run_id)

    def _path(self, path: str) -> Path:
        """A job path: relative ones start at the project folder."""
        value = Path(path)
        return value if value.is_absolute() else self.root / value

    def close(self) -> None:
        """Release the engines."""
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()


class _Heartbeat:
    """A progress callback that also renews a lease, at most every third of its length."""

    def __init__(self, leases: Leases, lease: Lease, seconds: float,
                 progress: Progress | None) -> None:
        self.leases, self.lease, self.seconds, self.progress = leases, lease, seconds, progress
        self.renewed = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if time.monotonic() - self.renewed > self.seconds / 3:
            self.lease = self.leases.renew(self.lease, seconds=self.seconds)
            self.renewed = time.monotonic()
        if self.progress:
            self.progress(done, total)
