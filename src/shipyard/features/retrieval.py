"""Historical (offline) retrieval: validate the entity frame, join point-in-time, transform."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from shipyard.core.errors import InvalidInputError
from shipyard.core.time import to_utc
from shipyard.features.catalog import Request
from shipyard.features.definitions import file_source_of
from shipyard.features.offline import ROW, TS, OfflineStore, ViewRead
from shipyard.features.transforms import input_columns, run_on_frame, to_pandas

EntityFrame = pd.DataFrame | str | Path


def view_reads(request: Request) -> list[ViewRead]:
    """The views a request reads, with the features it needs from each."""
    reads = []
    for view in request.views:
        wanted = request.view_features[view.name]
        reads.append(ViewRead(
            name=view.name, source=file_source_of(view.source),
            join_keys=request.catalog.join_keys(view),
            features=tuple(f for f in view.schema if f.name in wanted),
            ttl_seconds=None if view.ttl is None else int(view.ttl.total_seconds()),
        ))
    return reads


def read_entity_frame(entity_df: EntityFrame) -> pd.DataFrame:
    """The entity frame as pandas: a DataFrame as given, or read from a Parquet path."""
    if isinstance(entity_df, pd.DataFrame):
        return entity_df
    if isinstance(entity_df, str | Path):
        path = Path(entity_df)
        if not path.exists():
            raise InvalidInputError(f"Entity file {str(path)!r} does not exist.",
                                    hint="Pass a pandas DataFrame or the path of a Parquet file.")
        return pd.read_parquet(path)
    raise InvalidInputError(f"entity_df is a {type(entity_df).__name__}.",
                            hint="Pass a pandas DataFrame or the path of a Parquet file.")


def timestamp_column(frame: pd.DataFrame, name: str | None) -> str:
    """The entity frame's timestamp column: the one named, `event_timestamp`, or the only one."""
    if name is not None or "event_timestamp" in frame.columns:
        name = name or "event_timestamp"
        if name not in frame.columns:
            raise InvalidInputError(f"entity_df has no timestamp column {name!r}.",
                                    hint=f"Its columns are {list(frame.columns)}.")
        return name
    candidates = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    if len(candidates) != 1:
        raise InvalidInputError(
            "entity_df has no 'event_timestamp' column"
            + (f" and several timestamp columns {candidates}." if candidates else "."),
            hint="Add an 'event_timestamp' column or pass timestamp_column='...'.",
        )
    return str(candidates[0])


def utc_naive(series: pd.Series, column: str) -> np.ndarray:
    """Timestamps as naive UTC datetime64[us]; naive input is UTC, mixed input is an error."""
    if series.isna().any():
        raise InvalidInputError(
            f"entity_df column {column!r} has {int(series.isna().sum())} missing timestamps.",
            hint="Every entity row needs the time at which its features are wanted.",
        )
    if series.dtype == object:
        aware = {getattr(v, "tzinfo", None) is not None for v in series
                 if isinstance(v, datetime)}
        if len(aware) > 1:
            raise InvalidInputError(
                f"entity_df column {column!r} mixes naive and timezone-aware timestamps.",
                hint="Make them all aware (naive ones are read as UTC): "
                     "pd.to_datetime(col, utc=True).",
            )
        if not aware or any(not isinstance(v, datetime) for v in series):
            raise _not_timestamps(column, series)
        series = pd.to_datetime(series, utc=True)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(series):
        raise _not_timestamps(column, series)
    return series.to_numpy(dtype="datetime64[us]")


def _not_timestamps(column: str, series: pd.Series) -> InvalidInputError:
    return InvalidInputError(f"entity_df column {column!r} has dtype {str(series.dtype)!r}, "
                             "not timestamps.",
                             hint=f"Convert it: df[{column!r}] = pd.to_datetime(df[{column!r}], "
                                  "utc=True).")


def entity_table(frame: pd.DataFrame, keys: tuple[str, ...], ts_column: str,
                 request: Request) -> pa.Table:
    """The engine's entity input: row number, join keys and naive-UTC timestamp."""
    for key in keys:
        if key not in frame.columns:
            needing = [v.name for v in request.views if key in request.catalog.join_keys(v)]
            raise InvalidInputError(f"entity_df has no join key column {key!r}, needed by "
                                    f"{needing}.", hint=f"Its columns are {list(frame.columns)}.")
    arrays = {ROW: pa.array(np.arange(len(frame), dtype=np.int64))}
    for key in keys:
        try:
            arrays[key] = pa.Array.from_pandas(frame[key])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInputError(f"entity_df join key {key!r} has mixed or unsupported "
                                    f"values: {exc}", hint="Give each key a single type.") from exc
    arrays[TS] = pa.array(utc_naive(frame[ts_column], ts_column))
    return pa.table(arrays)


def historical_features(
    store: OfflineStore,
    request: Request,
    udfs: Mapping[str, Callable[[Any], Any]],
    entity_df: EntityFrame | None = None,
    *,
    full_feature_names: bool = False,
    filter_by_created_timestamp: bool = False,
    timestamp_column_name: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> pd.DataFrame:
    """The point-in-time correct feature values for every entity row, in the frame's order."""
    names = request.column_names(full_feature_names)
    reads = view_reads(request)
    if entity_df is None:
        if start is None or end is None:
            raise InvalidInputError("Pass an entity_df, or both start and end.",
                                    hint="Without entity_df every feature row in [start, end] "
                                         "is returned.")
        entities = store.entity_rows(reads, to_utc(start), to_utc(end))
        entities = entities.append_column(ROW, pa.array(np.arange(len(entities), dtype=np.int64)))
        frame = to_pandas(entities.drop([ROW])).rename(columns={TS: "event_timestamp"})
        frame["event_timestamp"] = frame["event_timestamp"].dt.tz_localize("UTC")
    else:
        frame = read_entity_frame(entity_df).reset_index(drop=True)
        clashes = [n for n in names if n in frame.columns]
        if clashes:
            raise InvalidInputError(f"entity_df already has columns {clashes}, named like "
                                    "requested features.",
                                    hint="Rename them, or pass full_feature_names=True.")
        ts_column = timestamp_column(frame, timestamp_column_name)
        entities = entity_table(frame, request.join_keys, ts_column, request)
    missing = [f.name for f in request.request_fields if f.name not in frame.columns]
    if missing:
        raise InvalidInputError(f"entity_df lacks request data {missing} needed by on-demand "
                                f"views {list(request.on_demand)}.",
                                hint="Add those columns to the entity frame.")
    _check_key_types(store, reads, entities)
    joined = store.point_in_time_join(entities, reads,
                                      filter_by_created_timestamp=filter_by_created_timestamp)
    features = to_pandas(joined.drop([ROW]))
    if len(features) != len(frame):  # the join keeps every row by construction
        raise AssertionError(f"point-in-time join returned {len(features)} of {len(frame)} rows")
    computed = _on_demand(request, udfs, features, frame)
    columns = {name: computed[f"{view}__{feature}"]
               for name, (view, feature) in zip(names, request.outputs, strict=True)}
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def _key_family(type_name: str) -> str:
    name = type_name.upper()
    if any(t in name for t in ("INT", "UINT")):
        return "integer"
    if name in ("VARCHAR", "STRING", "LARGE_STRING") or "STRING" in name or "UTF8" in name:
        return "string"
    return name


def _check_key_types(store: OfflineStore, reads: list[ViewRead], entities: pa.Table) -> None:
    """A key of another kind than the source's (str vs int) matches nothing: say so instead."""
    for read in reads:
        columns = store.describe_source(read.source)
        by_feature = {f: c for c, f in read.source.field_mapping.items()}
        for key in read.join_keys:
            source_type = columns.get(by_feature.get(key, key), "")
            given = entities.column(key).type
            if pa.types.is_null(given):
                continue
            if _key_family(source_type) != _key_family(str(given)):
                raise InvalidInputError(
                    f"entity_df join key {key!r} holds {given} values but view {read.name!r} "
                    f"stores it as {source_type}.",
                    hint=f"Convert the column, e.g. df[{key!r}] = df[{key!r}].astype(int).",
                )


def _on_demand(request: Request, udfs: Mapping[str, Callable[[Any], Any]],
               features: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Add every requested on-demand view's features (as 'view__feature') to `features`."""
    for odfv in request.on_demand_views:
        columns = input_columns(odfv, request.catalog)
        inputs = pd.DataFrame(index=features.index)
        for proj in odfv.view_inputs:
            view = request.catalog.feature_views[proj.view]
            for name in proj.features or view.feature_names:
                inputs[name] = features[f"{view.name}__{name}"]
        for src in odfv.request_sources:
            for f in src.schema:
                inputs[f.name] = frame[f.name]
        result = run_on_frame(odfv, udfs[odfv.name], inputs, columns)
        for name in odfv.feature_names:
            features[f"{odfv.name}__{name}"] = result[name]
    return features
