"""The embedded offline store: DuckDB over Parquet and CSV files, with ASOF joins."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from shipyard.core.errors import DefinitionError, InvalidInputError, NotFoundError
from shipyard.features.definitions import FileSource
from shipyard.features.offline import ROW, TS, ViewRead


def quote(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBOfflineStore:
    """Point-in-time joins in DuckDB; relative source paths are taken from `root`."""

    def __init__(self, root: Path, *, threads: int | None = None) -> None:
        self.root = Path(root)
        # No TimeZone setting: it needs the ICU extension, which may not be installable
        # offline. Without ICU, DuckDB casts TIMESTAMPTZ to TIMESTAMP in UTC, as we want.
        self._con = duckdb.connect(config={"threads": threads or os.cpu_count() or 1})
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    # -- sources -------------------------------------------------------------------------

    def _path(self, source: FileSource) -> str:
        path = Path(source.path)
        path = path if path.is_absolute() else self.root / path
        if path.is_dir():
            return str(path / "**" / "*.parquet")
        if not any(ch in str(path) for ch in "*?[") and not path.exists():
            raise NotFoundError(f"Source file {str(path)!r} does not exist.",
                                hint="Create it, or fix the FileSource path (relative paths "
                                     "start at the project folder).")
        return str(path)

    def relation_sql(self, source: FileSource) -> str:
        """A FROM-clause expression that reads the source's rows."""
        path = _literal(self._path(source))
        if source.file_format == "csv":
            return f"read_csv({path}, auto_detect=true)"
        return f"read_parquet({path}, union_by_name=true)"

    def describe_source(self, source: FileSource) -> dict[str, str]:
        """Column name to DuckDB type of a source, as stored (before field mapping)."""
        sql = f"DESCRIBE SELECT * FROM {self.relation_sql(source)}"
        try:
            with self._lock:
                rows = self._con.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise DefinitionError(f"Cannot read source {source.path!r}: {exc}",
                                  hint="Check that the file is valid Parquet or CSV.") from exc
        return {name: dtype for name, dtype, *_ in rows}

    def _view_sql(self, view: ViewRead, *, with_created: bool) -> str:
        """Rows of a view's source with keys, `__t` (and `__c`) and typed features."""
        src = view.source
        by_feature = {feature: column for column, feature in src.field_mapping.items()}
        cols = [f"{quote(by_feature.get(k, k))} AS {quote(k)}" for k in view.join_keys]
        cols.append(f"CAST({quote(src.timestamp_field)} AS TIMESTAMP) AS __t")
        if with_created:
            cols.append(f"CAST({quote(src.created_timestamp_field or '')} AS TIMESTAMP) AS __c")
        cols += [f"CAST({quote(by_feature.get(f.name, f.name))} AS {f.dtype.sql}) "
                 f"AS {quote(view.column(f.name))}" for f in view.features]
        return f"SELECT {', '.join(cols)} FROM {self.relation_sql(src)}"

    # -- point-in-time join --------------------------------------------------------------

    def _latest_sql(self, view: ViewRead, filter_by_created: bool) -> tuple[str, str]:
        """Per key, one candidate row per visibility time `__v`; returns (sql, visible_from).

        Without a created timestamp filter a row becomes visible at its event time, and rows
        with equal keys and event time collapse to the one created last. With the filter a
        row becomes visible at max(event, created), and the candidate at each `__v` is the
        row with the largest (event, created) among the rows already visible: a running
        maximum, so an ASOF join on `__v` returns exactly the point-in-time row.
        """
        has_created = view.source.created_timestamp_field is not None
        base = self._view_sql(view, with_created=has_created)
        keys = ", ".join(quote(k) for k in view.join_keys)
        feats = [quote(view.column(f.name)) for f in view.features]
        packed = f"struct_pack(__t := __t{', __c := __c' if has_created else ''}, " + ", ".join(
            f"{c} := {c}" for c in feats) + ")"
        unpack = ", ".join(f"__best.{c} AS {c}" for c in feats)
        if filter_by_created and has_created:
            return (f"SELECT {keys}, __v, __best.__t AS __t, {unpack} FROM ("
                    f"SELECT {keys}, greatest(__t, __c) AS __v, max({packed}) OVER ("
                    f"PARTITION BY {keys} ORDER BY greatest(__t, __c) RANGE BETWEEN UNBOUNDED "
                    f"PRECEDING AND CURRENT ROW) AS __best FROM ({base}))", "__v")
        # max() of a struct compares field by field: event time, then created, then values,
        # so ties are broken by created time and, failing that, deterministically.
        return (f"SELECT {keys}, __best.__t AS __t, {unpack} FROM ("
                f"SELECT {keys}, max({packed}) AS __best FROM ({base}) "
                f"GROUP BY {keys}, __t)", "__t")

    def point_in_time_join(self, entities: pa.Table, views: Sequence[ViewRead], *,
                           filter_by_created_timestamp: bool = False) -> pa.Table:
        """Features for each entity row (`__row`, keys, `__ts`), in `__row` order."""
        ctes, joins, selects = [], [], [f"e.{ROW}"]
        for i, view in enumerate(views):
            sql, visible = self._latest_sql(view, filter_by_created_timestamp)
            ctes.append(f"v{i} AS ({sql})")
            on = " AND ".join(f"e.{quote(k)} = v{i}.{quote(k)}" for k in view.join_keys)
            joins.append(f"ASOF LEFT JOIN v{i} ON {on} AND e.{TS} >= v{i}.{visible}")
            in_ttl = ("TRUE" if view.ttl_seconds is None else
                      f"v{i}.__t >= e.{TS} - INTERVAL {int(view.ttl_seconds)} SECOND")
            selects += [f"CASE WHEN {in_ttl} THEN v{i}.{quote(view.column(f.name))} END "
                        f"AS {quote(view.column(f.name))}" for f in view.features]
        sql = (f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM __entities e "
               f"{' '.join(joins)} ORDER BY e.{ROW}")
        return self._query(sql, entities)

    def entity_rows(self, views: Sequence[ViewRead], start: datetime, end: datetime) -> pa.Table:
        """Distinct (keys, `__ts`) of every feature row of the views with start <= ts <= end."""
        bounds = (f"__t BETWEEN CAST({_literal(start.isoformat())} AS TIMESTAMPTZ)::TIMESTAMP "
                  f"AND CAST({_literal(end.isoformat())} AS TIMESTAMPTZ)::TIMESTAMP")
        parts = [f"SELECT DISTINCT {', '.join(quote(k) for k in v.join_keys)}, __t AS {TS} "
                 f"FROM ({self._view_sql(v, with_created=False)}) WHERE {bounds}" for v in views]
        keys = list(dict.fromkeys(k for v in views for k in v.join_keys))
        sql = (f"SELECT DISTINCT * FROM ({' UNION ALL BY NAME '.join(parts)}) "
               f"ORDER BY {TS}, {', '.join(quote(k) for k in keys)}")
        return self._query(sql, None)

    def _query(self, sql: str, entities: pa.Table | None) -> pa.Table:
        with self._lock:
            cur = self._con.cursor()
        try:
            if entities is not None:
                cur.register("__entities", entities)
            return cur.execute(sql).fetch_arrow_table()
        except duckdb.ConversionException as exc:
            raise InvalidInputError(f"A source value does not fit its declared type: {exc}",
                                    hint="Fix the schema's dtype or the source data.") from exc
        except duckdb.BinderException as exc:
            raise InvalidInputError(f"The sources and the entity frame do not fit: {exc}",
                                    hint="Check join key types and source columns, then run "
                                         "`shipyard apply` to validate the definitions.") from exc
        finally:
            cur.close()
