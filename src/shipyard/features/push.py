"""Push: live rows for the views fed by a PushSource, online now and in the offline history.

A push is checked against every view fed by the source, then appended durably to the
offline store (so training sees it), then written online with the newer-wins rule. Offline
first: if the online write fails, a retry only repeats identical rows offline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.time import utc_now
from shipyard.core.types import Array, FeatureType, UnixTimestamp
from shipyard.features.catalog import Catalog
from shipyard.features.definitions import FeatureView, PushSource
from shipyard.features.materialize import latest_per_key, online_rows, view_read
from shipyard.features.offline import OfflineStore
from shipyard.features.online import OnlineStore

KeyKinds = Callable[[FeatureView], tuple[type | None, ...]]
UTC_US = pa.timestamp("us", tz="UTC")

_FITS: dict[str, Callable[[pa.DataType], bool]] = {
    "Int32": pa.types.is_integer,
    "Int64": pa.types.is_integer,
    "Float32": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t)
    or pa.types.is_decimal(t),
    "Float64": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t)
    or pa.types.is_decimal(t),
    "String": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "Bool": pa.types.is_boolean,
    "UnixTimestamp": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t),
}


def push_views(catalog: Catalog, name: str) -> list[FeatureView]:
    """The views fed by push source `name`, or NotFoundError."""
    views = [v for v in catalog.feature_views.values()
             if isinstance(v.source, PushSource) and v.source.name == name]
    if not views:
        known = sorted({v.source.name for v in catalog.feature_views.values()
                        if isinstance(v.source, PushSource)})
        raise NotFoundError(f"Push source {name!r} feeds no applied feature view.",
                            hint=f"Known push sources: {known}. Did you run `shipyard apply`?")
    return views


def fits(arrow_type: pa.DataType, dtype: FeatureType) -> bool:
    """Whether values of `arrow_type` can be stored as `dtype` without losing their meaning."""
    if pa.types.is_null(arrow_type):
        return True
    if isinstance(dtype, Array):
        return ((pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type))
                and fits(arrow_type.value_type, dtype.element))
    return _FITS[dtype.name](arrow_type)


def as_table(data: Any, source: str) -> pa.Table:
    """Pushed rows as an Arrow table: from a DataFrame, an Arrow table or a list of dicts."""
    try:
        if isinstance(data, pa.Table):
            return data
        if isinstance(data, pd.DataFrame):
            return pa.Table.from_pandas(data, preserve_index=False)
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return pa.Table.from_pylist(data)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInputError(f"Rows pushed to {source!r} have mixed or unsupported values: "
                                f"{exc}", hint="Give each column a single type.") from exc
    raise InvalidInputError(f"Rows pushed to {source!r} are a {type(data).__name__}.",
                            hint="Push a pandas DataFrame, a pyarrow Table or a list of dicts.")


def _timestamps(table: pa.Table, name: str, source: str, *, required: bool) -> pa.Array:
    column = table.column(name)
    if not fits(column.type, UnixTimestamp):
        raise InvalidInputError(f"Column {name!r} pushed to {source!r} has type {column.type}, "
                                "not timestamps.",
                                hint=f"Convert it: df[{name!r}] = pd.to_datetime(df[{name!r}], "
                                     "utc=True).")
    if required and column.null_count:
        raise InvalidInputError(f"Column {name!r} pushed to {source!r} has {column.null_count} "
                                "missing timestamps.", hint="Every pushed row needs its event time.")
    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("us"))
    # naive timestamps are UTC: Arrow casts a zone-less timestamp to UTC by its wall clock
    return pc.cast(column, UTC_US, safe=False)


def _feature_column(table: pa.Table, view: FeatureView, name: str, dtype: FeatureType,
                    source: str) -> pa.ChunkedArray:
    column = table.column(name)
    if not fits(column.type, dtype):
        raise InvalidInputError(f"Column {name!r} pushed to {source!r} has type {column.type}; "
                                f"feature view {view.name!r} declares it {dtype.name}.",
                                hint=f"Push {dtype.name} values in {name!r}.")
    if dtype.name == "UnixTimestamp":
        return _timestamps(table, name, source, required=False)
    try:
        return column.cast(dtype.arrow)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInputError(f"Column {name!r} pushed to {source!r} does not fit "
                                f"{dtype.name}: {exc}", hint="Push values in its range.") from exc


def _key_column(table: pa.Table, view: FeatureView, name: str, kind: type | None,
                source: str) -> pa.ChunkedArray:
    column = table.column(name)
    if column.null_count:
        raise InvalidInputError(f"Join key {name!r} pushed to {source!r} has "
                                f"{column.null_count} missing values.",
                                hint="Every pushed row needs its entity key.")
    ok = {int: pa.types.is_integer, str: lambda t: pa.types.is_string(t)
          or pa.types.is_large_string(t)}.get(kind) if kind else None
    if ok is not None and not ok(column.type):
        raise InvalidInputError(f"Join key {name!r} pushed to {source!r} has type {column.type}; "
                                f"feature view {view.name!r} keys are {kind.__name__}.",  # type: ignore[union-attr]
                                hint=f"Push {name!r} as {kind.__name__}.")  # type: ignore[union-attr]
    return column


def checked_push(catalog: Catalog, key_kinds: KeyKinds, name: str, data: Any,
                 now: datetime | None = None) -> tuple[list[FeatureView], pa.Table]:
    """The views a push feeds and its rows, checked against each and normalised.

    The table has the join keys, the event (and created) time as UTC and every feature,
    named as in the views; a missing created time is the time of the push.
    """
    views = push_views(catalog, name)
    source: PushSource = views[0].source  # type: ignore[assignment]
    table = as_table(data, name)
    needed = {source.timestamp_field: "the event time"}
    for view in views:
        for key in catalog.join_keys(view):
            needed.setdefault(key, f"join key of {view.name!r}")
        for feature in view.feature_names:
            needed.setdefault(feature, f"feature of {view.name!r}")
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"Rows pushed to {name!r} lack columns {missing} "
            f"({', '.join(needed[c] for c in missing)}).",
            hint=f"Their columns are {table.column_names}; add the missing ones.")
    columns: dict[str, pa.ChunkedArray] = {}
    for view in views:
        for key, kind in zip(catalog.join_keys(view), key_kinds(view), strict=True):
            columns[key] = _key_column(table, view, key, kind, name)
    columns[source.timestamp_field] = _timestamps(table, source.timestamp_field, name,
                                                  required=True)
    created = source.created_timestamp_field
    if created is not None:
        columns[created] = (_timestamps(table, created, name, required=False)
                            if created in table.column_names else
                            pa.chunked_array([pa.array([now or utc_now()] * table.num_rows,
                                                       UTC_US)]))
    for view in views:
        for f in view.schema:
            columns.setdefault(f.name, _feature_column(table, view, f.name, f.dtype, name))
    return views, pa.table(columns)


def push(offline: OfflineStore, online: OnlineStore, catalog: Catalog, key_kinds: KeyKinds,
         name: str, data: Any) -> int:
    """Check rows, append them to the offline history, write them online; return the count."""
    views, table = checked_push(catalog, key_kinds, name, data)
    if table.num_rows == 0:
        return 0
    source: PushSource = views[0].source  # type: ignore[assignment]
    offline.write_rows(source.batch_source, _as_source_columns(table, source))
    for view in views:
        read = view_read(catalog, view)
        batch, unique = latest_per_key(_as_scan_batch(table, source, view, catalog),
                                       read.join_keys)
        online.write(view.name, online_rows(read, batch, unique=unique))
    return table.num_rows


def _as_source_columns(table: pa.Table, source: PushSource) -> pa.Table:
    """Rename features and keys to the batch source's column names (its field_mapping)."""
    to_column = {feature: column for column, feature in source.batch_source.field_mapping.items()}
    return table.rename_columns([to_column.get(c, c) for c in table.column_names])


def _as_scan_batch(table: pa.Table, source: PushSource, view: FeatureView,
                   catalog: Catalog) -> pa.RecordBatch:
    """The push in the layout `scan_latest_rows` streams, for `online_rows`."""
    columns: dict[str, Any] = {k: table.column(k) for k in catalog.join_keys(view)}
    columns["__t"] = table.column(source.timestamp_field)
    if source.created_timestamp_field is not None:
        columns["__c"] = table.column(source.created_timestamp_field)
    for f in view.schema:
        columns[f"{view.name}__{f.name}"] = table.column(f.name)
    return pa.table(columns).combine_chunks().to_batches()[0]
