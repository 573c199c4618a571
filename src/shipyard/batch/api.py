"""`project.batch`: batch prediction (local engine or Spark), its run records, and jobs."""

from __future__ import annotations

import inspect
import logging
import threading
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
from shipyard.core.errors import ConfigError, ConflictError, NotFoundError
from shipyard.core.time import utc_now
from shipyard.features.definitions import Definition
from shipyard.features.store import FeatureStore
from shipyard.metadata.db import Database
from shipyard.models import ModelRegistry

LEASE_SECONDS = 3_600.0
log = logging.getLogger(__name__)


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
                 engine_options: dict[str, dict[str, Any]] | None = None,
                 monitor: Callable[[datetime], tuple[int, int]] | None = None) -> None:
        self.db = db
        self.project = project
        self.root = root
        self.features = features
        self.models = models
        self._definitions = definitions
        self._jobs = check_unique(list(jobs))
        self._engine_options = engine_options or {}
        self._engines: dict[str, BatchEngine] = {}
        self._monitor = monitor  # evaluates the alert rules: (verdicts, alert events)
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

    def configure_engine(self, name: str, **options: Any) -> None:
        """Set options of engine `name` for the runs that follow (local: `workers`, `batch_rows`;
        spark: `master`, `conf`), on top of shipyard.yaml's."""
        merged = {**self._engine_options.get(name, {}), **options}
        engine = self._make_engine(name, merged)  # bad options fail here, not at the next run
        old = self._engines.pop(name, None)
        if old is not None:
            old.close()
        self._engine_options[name] = merged
        self._engines[name] = engine

    def _engine(self, name: str) -> BatchEngine:
        if name not in self._engines:
            self._engines[name] = self._make_engine(name, self._engine_options.get(name, {}))
        return self._engines[name]

    def _make_engine(self, name: str, options: dict[str, Any]) -> BatchEngine:
        cls = engine_class(name)
        context = {"local": {"offline": self.features.offline},
                   "spark": {"root": self.root}}.get(name, {})
        unknown = [k for k in options if k in context
                   or k not in inspect.signature(cls).parameters]
        if unknown:
            known = [p for p in inspect.signature(cls).parameters if p not in context]
            raise ConfigError(f"The {name!r} batch engine has no option(s) {unknown}.",
                              hint=f"Its options are {known}.")
        engine: BatchEngine = cls(**context, **options)
        return engine

    def get_run(self, run_id: str) -> BatchRun:
        """The record of run `run_id`."""
        return self.runs.get(run_id)

    def list_runs(self, *, model: str | None = None, job: str | None = None,
                  limit: int = 100) -> list[BatchRun]:
        """Recent runs, newest first; filter by job name, or by model: a name ('fraud': any
        version) or one version ('fraud/2', 'fraud@champion'): the version's lineage."""
        version = None
        if model is not None and ("/" in model or "@" in model):
            found = self.models.get_version(model)
            model, version = found.name, found.version
        return self.runs.list(model=model, version=version, job=job, limit=limit)

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
        try:
            with _LeaseKeeper(leases, held, lease_seconds):
                at = scheduled_at or utc_now()
                if job.kind == "materialize":
                    return self._materialize(job, at)
                if job.kind == "monitor":
                    return self._run_monitor(job, at)
                return self._predict_job(job, at, progress)
        finally:
            if lease is None:
                leases.release(held)

    def _predict_job(self, job: JobDefinition, at: datetime,
                     progress: Progress | None) -> BatchRun:
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
        def work() -> tuple[int, int]:
            results = self.features.materialize_incremental(at, views=job.options.get("views"))
            return sum(r.rows for r in results), len(results)

        return self._recorded(job, at, "materialize", "online store", work)

    def _run_monitor(self, job: JobDefinition, at: datetime) -> BatchRun:
        monitor = self._monitor
        if monitor is None:
            raise ConfigError(f"Job {job.name!r} monitors, but this project has no monitoring.",
                              hint="Build Batch with monitor=..., as Project.batch does.")
        return self._recorded(job, at, "monitor", "alert events", lambda: monitor(at))

    def _recorded(self, job: JobDefinition, at: datetime, kind: str, output: str,
                  work: Callable[[], tuple[int, int]]) -> BatchRun:
        """Run `work` (returning rows, partitions) as a recorded run of `job`."""
        run_id = uuid.uuid4().hex
        self.runs.start(run_id, kind=kind, engine="local", job=job.name,
                        features_at=at.isoformat(), output=output)
        started = time.perf_counter()
        try:
            rows, partitions = work()
        except BaseException as exc:
            self.runs.fail(run_id, exc, duration_seconds=time.perf_counter() - started)
            raise
        self.runs.finish(run_id, rows=rows, partitions=partitions,
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


class _LeaseKeeper:
    """Renews a job's lease every third of its length, from a thread, while the job runs:
    a long job keeps its lease whether or not it reports progress (Spark and materialization
    jobs report little), and a job whose process died loses it within one length."""

    def __init__(self, leases: Leases, lease: Lease, seconds: float) -> None:
        self.leases, self.lease, self.seconds = leases, lease, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{lease.job}",
                                        daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.lease = self.leases.renew(self.lease, seconds=self.seconds)
            except Exception as exc:  # a database hiccup: the lease still runs; retry next beat
                log.warning("could not renew the lease of job %s: %s", self.lease.job, exc)
