"""The Spark engine: the point-in-time join in Spark SQL, scoring in `mapInArrow`.

The scorer (model and on-demand functions) is pickled once, broadcast, and unpickled once
per Python worker of each executor; every Arrow batch then goes through the same
`Scorer.score` as the local engine. Spark writes the output (all or nothing, through its
output committer). `local[*]` by default; any master by `spark: {master: ...}` in
shipyard.yaml.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import cloudpickle
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession  # missing: `engine_class` says how to install it

from shipyard.batch._spark_join import TS, point_in_time_join, quoted
from shipyard.batch.engines import EngineReport, Progress
from shipyard.batch.local import cores
from shipyard.batch.output import OutputFolder
from shipyard.batch.plan import BatchJob
from shipyard.batch.scoring import JoinedFeatures, Scorer
from shipyard.core import errors
from shipyard.core.errors import BackendUnavailable, ConfigError, ShipyardError

_ERROR = re.compile(r"shipyard\.core\.errors\.(\w+): (.*?)(?: Hint: (.*))?$", re.MULTILINE)


def spark_session(master: str = "local[*]", conf: dict[str, str] | None = None) -> Any:
    """This process's SparkSession, started on first use (it takes ~10 s) and then shared."""
    # pyspark starts executor Pythons from PYSPARK_PYTHON (its conf key is not read in local
    # mode): they must be this interpreter, which has Shipyard and the model's libraries
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = {"spark.sql.session.timeZone": "UTC", "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
                "spark.sql.execution.arrow.pyspark.enabled": "true",
                "spark.sql.shuffle.partitions": str(2 * cores()) if master.startswith("local")
                else "200", **(conf or {})}
    builder = SparkSession.builder.master(master).appName("shipyard")
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # Java missing, master unreachable: py4j raises plain errors
        raise BackendUnavailable(f"Cannot start Spark on {master!r}: {exc}",
                                 hint="Install Java 17+ and check `spark.master` in "
                                      "shipyard.yaml.") from exc


class SparkEngine:
    """Batch prediction on a SparkSession."""

    def __init__(self, *, root: Path, master: str = "local[*]",
                 conf: dict[str, str] | None = None) -> None:
        self.root = Path(root)
        self.master = master
        self.conf = dict(conf or {})

    def run(self, job: BatchJob, progress: Progress | None = None) -> EngineReport:
        """Join, score and write the whole job (a rerun redoes it: Spark's write is atomic)."""
        total = job.input.num_rows
        if progress:
            progress(0, total)
        spark = spark_session(self.master, self.conf)
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(job.chunk_rows))
        scorer = spark.sparkContext.broadcast((uuid.uuid4().hex,
                                               cloudpickle.dumps(job.scorer)))
        try:
            with _translated_errors():
                joined = point_in_time_join(spark, self._entities(spark, job), job.reads,
                                            self.root)
                features = [r.column(f.name) for r in job.reads for f in r.features]
                score = partial(_score_partition, scorer, features, job.source_types)
                from pyspark.sql.pandas.types import from_arrow_schema

                output = joined.mapInArrow(score, from_arrow_schema(job.scorer.schema))
                output.write.mode("overwrite").parquet(str(job.output))
        finally:
            scorer.destroy()
        OutputFolder(job.output).describe({**job.header, "partitions": None})
        files = sorted(job.output.glob("part-*.parquet"))
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if progress:
            progress(rows, total)
        return EngineReport(rows=rows, partitions=len(files))

    def _entities(self, spark: Any, job: BatchJob) -> Any:
        """The input rows a job needs, with `__ts`: each row's time or features_at."""
        columns = job.scorer.input_columns
        if job.input.table is not None:
            frame = spark.createDataFrame(job.input.table.select(columns))
        else:
            frame = spark.read.parquet(*(str(f) for f in job.input.files)).select(
                *(f"`{c}`" for c in columns))
        if job.features_at is not None:
            at = job.features_at.strftime("%Y-%m-%d %H:%M:%S.%f")
            return frame.selectExpr("*", f"TIMESTAMP '{at}' AS {TS}")
        return frame.selectExpr("*", f"CAST({quoted(job.scorer.timestamp_column or '')} AS "
                                     f"TIMESTAMP) AS {TS}")

    def close(self) -> None:
        """The session stays: it is the process's, shared and slow to start."""


_SCORERS: dict[str, Scorer] = {}  # per executor Python worker: the job's key -> its scorer


def _scorer(broadcast: Any) -> Scorer:
    key, payload = broadcast.value
    if key not in _SCORERS:
        from threadpoolctl import threadpool_limits

        _SCORERS.clear()
        _SCORERS[key] = cloudpickle.loads(payload)
        threadpool_limits(1)  # Spark runs one Python worker per core already
    return _SCORERS[key]


def _score_partition(broadcast: Any, features: list[str], source_types: dict[str, Any],
                     batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow: joined rows in, output rows out (the local engine's scoring code)."""
    scorer = _scorer(broadcast)
    for batch in batches:
        table = pa.Table.from_batches([batch])
        joined = JoinedFeatures(table.select(features), source_types)
        yield from scorer.score(table.select(scorer.input_columns), joined).to_batches()


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Spark's errors as Shipyard's, keeping a ShipyardError raised in an executor."""
    try:
        yield
    except ShipyardError:
        raise
    except Exception as exc:  # py4j and pyspark errors have no common base worth naming
        found = _ERROR.findall(str(exc))
        if found:
            name, message, hint = found[-1]
            kind = getattr(errors, name, ShipyardError)
            raise kind(message, hint=hint or None) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if type(exc).__name__ == "AnalysisException":
            raise ConfigError(f"Spark could not plan the job: {first}",
                              hint="Check the input's and the sources' columns.") from exc
        raise ShipyardError(f"The Spark job failed: {first}",
                            hint="See the Spark log above for the cause.") from exc
