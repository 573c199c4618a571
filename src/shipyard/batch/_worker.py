"""One local-engine worker: load the scorer and the view indexes once, then score partitions.

Workers live in a reusable pool (loky) whose processes start with BLAS and OpenMP pinned to
one thread: one process per core beats one process with many threads (the model's own
threading), and never oversubscribes. A worker keeps the last job it loaded, so a job's
setup (the pickled scorer, the memory-mapped indexes) is read once per worker, not per task.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cloudpickle
import pyarrow as pa

from shipyard.batch.asof import AsofJoin, ViewIndex
from shipyard.batch.inputs import Partition, read_partition
from shipyard.batch.output import write_partition
from shipyard.batch.scoring import Scorer
from shipyard.core.errors import ShipyardError
from shipyard.features.retrieval import view_reads

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker loads once per job: the pickled scorer and where the view indexes are."""

    scorer: bytes  # cloudpickle: the model and the on-demand functions travel by value
    indexes: dict[str, str] = field(default_factory=dict)  # view name -> index folder
    source_types: dict[str, dict[str, str]] = field(default_factory=dict)
    output: str = ""
    batch_rows: int = 100_000


@dataclass(frozen=True)
class PartitionDone:
    """A finished partition, or the error that stopped it (errors cross processes as data)."""

    index: int
    rows: int = 0
    peak_rss_bytes: int = 0
    pid: int = 0
    cpu_seconds: float = 0.0  # what the task cost its worker (a job's setup included)
    error: tuple[type[ShipyardError], str, str | None] | None = None


def peak_rss_bytes(pid: int | None = None) -> int:
    """Peak resident memory of this process (or of `pid`; 0 if it is gone). Linux's ru_maxrss
    survives exec (a pool worker would report its parent's peak), so the kernel's VmHWM is
    read where there is one."""
    try:
        with open(f"/proc/{pid or 'self'}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        if pid is not None:
            return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Worker:
    """A scorer with its join, ready to run partitions."""

    def __init__(self, scorer: Scorer, join: AsofJoin, output: Path, batch_rows: int) -> None:
        self.scorer = scorer
        self.join = join
        self.output = output
        self.batch_rows = batch_rows

    @classmethod
    def load(cls, setup: WorkerSetup) -> Worker:
        """Unpickle the scorer and memory-map the indexes of `setup`."""
        scorer: Scorer = cloudpickle.loads(setup.scorer)
        reads = {r.name: r for r in ([] if scorer.request is None
                                     else view_reads(scorer.request))}
        indexes = {name: ViewIndex.load(reads[name], Path(folder))
                   for name, folder in setup.indexes.items()}
        return cls(scorer, AsofJoin(indexes, setup.source_types), Path(setup.output),
                   setup.batch_rows)

    def run(self, part: Partition) -> PartitionDone:
        """Score one partition and write its file; a ShipyardError is returned, not raised."""
        try:
            rows = write_partition(self.output, part.index, self.scorer.schema, self._tables(part))
        except ShipyardError as exc:
            return PartitionDone(part.index, error=(type(exc), exc.message, exc.hint))
        return PartitionDone(part.index, rows, peak_rss_bytes(), os.getpid())

    def _tables(self, part: Partition) -> Iterator[pa.Table]:
        for batch in read_partition(part, self.scorer.input_columns, self.batch_rows):
            yield self.scorer.score(batch, self.join)


def warm_up(scorer: bytes) -> int:
    """Pool task: import what unpickling a job's scorer needs (the model's library); the pid."""
    cloudpickle.loads(scorer)
    return os.getpid()


_LOADED: tuple[str, Worker] | None = None  # (setup file, its worker): the job in progress


def run_partition(setup_file: str, part: Partition) -> PartitionDone:
    """Pool task: one partition of the job whose setup is pickled in `setup_file`."""
    global _LOADED
    started = time.process_time()
    if _LOADED is None or _LOADED[0] != setup_file:
        from threadpoolctl import threadpool_limits

        _LOADED = None  # let the previous job's indexes go first
        with open(setup_file, "rb") as fh:
            setup: WorkerSetup = cloudpickle.load(fh)
        _LOADED = setup_file, Worker.load(setup)
        threadpool_limits(1)  # also for libraries the model brought in (OpenMP, BLAS)
    done = _LOADED[1].run(part)
    return replace(done, cpu_seconds=time.process_time() - started)
