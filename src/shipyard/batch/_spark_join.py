"""The point-in-time join in Spark SQL, with the offline store's rule (DESIGN.md).

Per view, the entity rows and the view's rows are put in one frame and ordered, per key, by
(time, entity rows after view rows, created time); the feature row each entity row gets is
the last view row at or before it (`last(..., true)` over the running window), nulled when
it is older than the ttl. One sort per view, however many rows each key has, where a range
join would multiply every entity row by the key's history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.core.types import Array, FeatureType
from shipyard.features.offline import ViewRead
from shipyard.features.offline._pushed import pushed_glob

TS = "__ts"  # the entity row's time
_SPARK_TYPES = {"Int32": "int", "Int64": "bigint", "Float32": "float", "Float64": "double",
                "String": "string", "Bool": "boolean", "UnixTimestamp": "timestamp"}


def spark_type(dtype: FeatureType) -> str:
    """The Spark SQL type of a Shipyard dtype."""
    if isinstance(dtype, Array):
        return f"array<{_SPARK_TYPES[dtype.element.name]}>"
    return _SPARK_TYPES[dtype.name]


def quoted(name: str) -> str:
    """A column name as a Spark SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def read_source(spark: Any, read: ViewRead, root: Path) -> Any:
    """The rows of a view's source as Spark reads them: batch files, plus pushed rows."""
    source = read.source
    path = Path(source.path) if Path(source.path).is_absolute() else root / source.path
    reader = spark.read
    if path.is_dir():
        reader = reader.option("recursiveFileLookup", "true")
    if source.file_format == "csv":
        frame = reader.option("header", "true").option("inferSchema", "true").csv(str(path))
    else:
        frame = reader.parquet(str(path))
    pushed = pushed_glob(path)
    if pushed is not None:
        frame = frame.unionByName(spark.read.parquet(pushed), allowMissingColumns=True)
    return frame


def view_rows(frame: Any, read: ViewRead) -> Any:
    """A source's rows as the join reads them: keys, `__t`, `__c`, typed 'view__feature'."""
    source = read.source
    by_feature = {feature: column for column, feature in source.field_mapping.items()}
    columns = [f"{quoted(by_feature.get(k, k))} AS {quoted(k)}" for k in read.join_keys]
    columns.append(f"CAST({quoted(source.timestamp_field)} AS TIMESTAMP) AS __t")
    if source.created_timestamp_field:
        columns.append(f"CAST({quoted(source.created_timestamp_field)} AS TIMESTAMP) AS __c")
    columns += [f"CAST({quoted(by_feature.get(f.name, f.name))} AS {spark_type(f.dtype)}) AS "
                f"{quoted(read.column(f.name))}" for f in read.features]
    present = " AND ".join(f"{quoted(k)} IS NOT NULL" for k in [*read.join_keys, "__t"])
    return frame.selectExpr(*columns).where(present)


def join_view(entities: Any, rows: Any, read: ViewRead) -> Any:
    """`entities` (with `__ts`) plus the view's features, by the point-in-time rule."""
    from pyspark.sql import functions as F  # noqa: N812 - pyspark's own convention

    features = [read.column(f.name) for f in read.features]
    packed = ", ".join(["'__t', __t", *(f"'{f}', {quoted(f)}" for f in features)])
    candidates = rows.selectExpr(*(quoted(k) for k in read.join_keys), "__t",
                                 "__c" if "__c" in rows.columns else "CAST(NULL AS TIMESTAMP) AS __c",
                                 "0 AS __kind", f"named_struct({packed}) AS __v")
    both = entities.selectExpr("*", f"{TS} AS __t", "CAST(NULL AS TIMESTAMP) AS __c",
                               "1 AS __kind").unionByName(candidates, allowMissingColumns=True)
    keys = ", ".join(quoted(k) for k in read.join_keys)
    best = F.expr(f"last(__v, true) OVER (PARTITION BY {keys} ORDER BY __t, __kind, "
                  "__c ASC NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
    picked = both.withColumn("__best", best).where("__kind = 1")
    fresh = ("TRUE" if read.ttl_seconds is None else
             f"unix_micros(__best.__t) >= unix_micros({TS}) - {int(read.ttl_seconds) * 1_000_000}")
    picked = picked.selectExpr(*(quoted(c) for c in entities.columns),
                               *(f"CASE WHEN {fresh} THEN __best.{quoted(f)} END AS {quoted(f)}"
                                 for f in features))
    return picked


def point_in_time_join(spark: Any, entities: Any, reads: list[ViewRead], root: Path) -> Any:
    """Every view's features for each entity row (`entities` carries `__ts`)."""
    for read in reads:
        entities = join_view(entities, view_rows(read_source(spark, read, root), read), read)
    return entities
