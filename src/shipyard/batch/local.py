"""The local engine: the input streamed in partitions through a pool of one process per core.

The view rows each job needs are read once (DuckDB), sorted into `ViewIndex`es on disk and
memory-mapped by every worker. The parent hands out partitions, at most two per worker at a
time, so memory stays bounded whatever the input size, and records each finished partition
in the output's manifest: a run killed part-way finishes, when rerun with the same run id,
the partitions it had not recorded.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cloudpickle
import pyarrow as pa
from loky import get_reusable_executor
from threadpoolctl import threadpool_limits

from shipyard.batch import _worker
from shipyard.batch.asof import AsofJoin, ViewIndex
from shipyard.batch.engines import EngineReport, Progress
from shipyard.batch.inputs import Partition, read_partition
from shipyard.batch.output import OutputFolder
from shipyard.batch.plan import BatchJob
from shipyard.core.errors import ConfigError, ShipyardError
from shipyard.features.offline import ViewRead

_IN_FLIGHT = 2  # partitions queued per worker: enough to keep it busy, few to hold in memory
_PROBE_ROWS = 16
_IDLE_SECONDS = 300  # pool workers idle this long exit (the next job starts new ones)


@runtime_checkable
class RowScanner(Protocol):
    """An offline store that can read a view's rows as its joins see them (DuckDB's)."""

    def scan_rows(self, view: ViewRead, *, start: datetime | None = None,
                  end: datetime | None = None) -> pa.Table: ...


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LocalEngine:
    """Batch prediction on this machine: DuckDB reads, a process pool scores."""

    def __init__(self, offline: object, *, workers: int | None = None,
                 batch_rows: int | None = None) -> None:
        if not isinstance(offline, RowScanner):
            raise ConfigError("The local batch engine needs the DuckDB offline store.",
                              hint="Set offline_store: {type: duckdb}, or use engine='spark'.")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"The local engine's workers must be a positive integer, not "
                              f"{workers!r}.", hint="e.g. workers=2; leave it unset for one per core.")
        self.offline = offline
        self.workers = workers
        self.batch_rows = batch_rows

    def run(self, job: BatchJob, progress: Progress | None = None) -> EngineReport:
        """Score every partition not yet done, then mark the output finished."""
        parts = job.input.partitions(job.chunk_rows)
        folder = OutputFolder(job.output)
        header = {**job.header, "partitions": len(parts)}
        done = folder.resumable(header) if job.resume else {}
        todo = [p for p in parts if p.index not in done]
        total, finished = job.input.num_rows, sum(done.values())
        workers = max(1, min(self.workers or cores(), len(todo)))
        peak, cpu, started = 0, 0.0, time.process_time()
        if workers > 1:  # start the workers' imports while this process reads the views
            self._warm_up(job, workers)
        with tempfile.TemporaryDirectory(prefix="shipyard-batch-") as tmp:
            indexes = self._indexes(job) if todo else {}
            worker = _worker.Worker(job.scorer, AsofJoin(indexes, job.source_types), job.output,
                                    self.batch_rows or job.chunk_rows)
            if todo:
                self._probe(job, worker, todo[0])
            folder.start(header, resume=job.resume)
            if progress:
                progress(finished, total)
            if workers == 1:
                results = self._in_process(job, worker, todo)
            else:
                setup = self._setup(job, worker, indexes, Path(tmp))
                del worker, indexes  # the workers map the saved copies: let this one go
                results = self._pool(job, setup, todo, workers)
            peaks: dict[int, int] = {}
            with closing(results):
                for result in results:
                    if result.error is not None:
                        kind, message, hint = result.error
                        raise kind(message, hint=hint)
                    folder.record(result.index, result.rows)
                    finished += result.rows
                    peaks[result.pid] = max(peaks.get(result.pid, 0), result.peak_rss_bytes)
                    cpu += result.cpu_seconds
                    if progress:
                        progress(finished, total)
            if workers > 1:  # a worker that only warmed up reports nothing, yet holds memory
                for pid in list(getattr(_executor(workers), "_processes", None) or {}):
                    peaks[pid] = max(peaks.get(pid, 0), _worker.peak_rss_bytes(pid))
            peak = concurrent_peak([v for pid, v in peaks.items() if pid != os.getpid()], workers)
        folder.finish()
        peak += _worker.peak_rss_bytes()
        return EngineReport(rows=finished, partitions=len(parts),
                            skipped_partitions=len(parts) - len(todo), peak_rss_bytes=peak,
                            cpu_seconds=cpu + time.process_time() - started)

    def close(self) -> None:
        """Nothing to release: pools live for one run."""

    def _indexes(self, job: BatchJob) -> dict[str, ViewIndex]:
        """Each view's rows the job can join (in the entity time range, less the ttl)."""
        indexes = {}
        for read in job.reads:
            start = end = None
            if job.time_range is not None:
                low, end = job.time_range
                start = None if read.ttl_seconds is None else low - timedelta(
                    seconds=read.ttl_seconds)
            rows = self.offline.scan_rows(read, start=start, end=end)
            indexes[read.name] = ViewIndex.build(read, rows)
        return indexes

    def _probe(self, job: BatchJob, worker: _worker.Worker, part: Partition) -> None:
        """Score a few rows first, so that bad data or code fails before any output exists."""
        batch = next(read_partition(job.input.portable(part), job.scorer.input_columns,
                                    _PROBE_ROWS), None)
        if batch is not None:
            with threadpool_limits(1):  # a model's threads cost more than 16 rows take
                job.scorer.score(batch, worker.join)

    def _setup(self, job: BatchJob, worker: _worker.Worker, indexes: dict[str, ViewIndex],
               folder: Path) -> str:
        """Write what workers load once per job; return the file's path."""
        paths = {}
        for name, index in indexes.items():
            index.save(folder / name)
            paths[name] = str(folder / name)
        setup = _worker.WorkerSetup(scorer=cloudpickle.dumps(job.scorer), indexes=paths,
                                    source_types=job.source_types, output=str(job.output),
                                    batch_rows=worker.batch_rows)
        path = folder / "setup.pickle"
        path.write_bytes(cloudpickle.dumps(setup))
        return str(path)

    def _in_process(self, job: BatchJob, worker: _worker.Worker,
                    todo: list[Partition]) -> Iterator[_worker.PartitionDone]:
        """Results of `todo` scored in this process; pinned to one thread, as a pool worker
        is, when one process is all the engine may use (else the model's threads help)."""
        pinned = (self.workers or cores()) == 1
        with threadpool_limits(1) if pinned else nullcontext():
            for part in todo:
                yield worker.run(job.input.portable(part))

    def _warm_up(self, job: BatchJob, workers: int) -> None:
        """Have the pool's processes start and import what the job's scorer needs (a cold
        start takes seconds, now spent while this process builds the view indexes)."""
        scorer = cloudpickle.dumps(job.scorer)
        pool = _executor(workers)
        for _ in range(workers):
            pool.submit(_worker.warm_up, scorer)  # its result, or failure, is of no interest

    def _pool(self, job: BatchJob, setup: str, todo: list[Partition],
              workers: int) -> Iterator[_worker.PartitionDone]:
        """Results of `todo` as workers finish them, with at most `_IN_FLIGHT` each queued."""
        pool = _executor(workers)
        queue = iter(todo)
        pending: set[Future[_worker.PartitionDone]] = set()

        def submit() -> None:
            part = next(queue, None)
            if part is not None:
                pending.add(pool.submit(_worker.run_partition, setup, job.input.portable(part)))

        for _ in range(workers * _IN_FLIGHT):
            submit()
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                    submit()
        except BrokenProcessPool as exc:
            raise ShipyardError(
                f"A batch worker process died during run {job.run_id!r}.",
                hint=f"Rerun with run_id={job.run_id!r} to finish it; if a worker ran out of "
                     "memory, lower chunk_rows.") from exc
        finally:
            for future in pending:
                future.cancel()
            wait(pending)  # no worker may still write this job's files once we return


def concurrent_peak(worker_peaks: list[int], workers: int) -> int:
    """The most memory `workers` pool processes can have held at once: the sum of the largest
    `workers` peaks. The pool may replace a process (loky restarts a worker whose memory grew),
    and a replaced process's peak must not be added to its successor's."""
    return sum(sorted(worker_peaks, reverse=True)[:workers])


def _executor(workers: int) -> Any:
    """The reusable pool of `workers` processes, BLAS/OpenMP pinned to one thread each."""
    return get_reusable_executor(max_workers=workers, timeout=_IDLE_SECONDS,
                                 env=_worker.ONE_THREAD)
