"""The feature routes: `POST /v1/features/online` (read) and `POST /v1/push` (write)."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from starlette.routing import Router

from shipyard.core.types import FeatureType, UnixTimestamp
from shipyard.features.online_read import ReadPlan
from shipyard.features.push import push_views
from shipyard.serving import _inputs
from shipyard.serving._json import document, wrong_type
from shipyard.serving.routes import JsonCall, JsonRoute
from shipyard.serving.schemas import (
    OnlineFeaturesRequest,
    OnlineFeaturesResponse,
    PushRequest,
    PushResponse,
)
from shipyard.serving.state import ServerState

# Up to this many entity rows are read on the event loop: a read of a few rows takes tens
# of microseconds, less than handing it to a thread. Larger reads go to a thread.
INLINE_ENTITY_ROWS = 256
_ENTITIES_EXAMPLE = '"entities": {"customer_id": [1, 2]}'


class _PlanInputs(NamedTuple):
    """What the server checks and answers per read plan, worked out once."""

    key_kinds: dict[str, type | None]  # join key -> int or str (None: not checked)
    request_fields: tuple[tuple[str, FeatureType], ...]
    metadata: dict[str, list[str]]


class _PlanCache:
    """`_PlanInputs` per read plan (plans are cached by the reader, so few exist)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[ReadPlan, _PlanInputs]] = {}

    def get(self, plan: ReadPlan) -> _PlanInputs:
        hit = self._cache.get(id(plan))
        if hit is not None and hit[0] is plan:
            return hit[1]
        kinds: dict[str, type | None] = {}
        for step in plan.views:
            for key, kind in zip(step.keys, step.kinds, strict=True):
                kinds[key] = kinds.get(key) or kind
        fields: dict[str, FeatureType] = {}
        for od in plan.on_demand:
            for source in od.view.request_sources:
                fields.update((f.name, f.dtype) for f in source.schema)
        inputs = _PlanInputs({k: kinds.get(k) for k in plan.join_keys}, tuple(fields.items()),
                             {"join_keys": list(plan.join_keys),
                              "feature_names": [name for name, _ in plan.outputs]})
        if len(self._cache) > 1_024:
            self._cache.clear()
        self._cache[id(plan)] = (plan, inputs)
        return inputs


def feature_routes(state: ServerState) -> Router:
    """The online read and push routes over the project's feature store."""
    reader, store, features = state.reader, state.store, state.project.features
    plans = _PlanCache()

    async def online_features(call: JsonCall) -> Any:
        """Latest feature values of entity rows given as columns."""
        doc = document(call.body)
        selected, service = _inputs.feature_selection(doc)
        full = _inputs.optional_bool(doc, "full_feature_names")
        entities = _inputs.columns_field(doc, "entities", required=True,
                                         example=_ENTITIES_EXAMPLE)
        request = _inputs.columns_field(doc, "request", required=False,
                                        example='"request": {"amount": [12.5, 3.0]}')
        n = _inputs.row_count({"entities": entities, "request": request})
        plan = reader.plan(selected, service, full)
        inputs = plans.get(plan)
        columns = {key: _inputs.key_column(entities, key, kind)
                   for key, kind in inputs.key_kinds.items()}
        for name, dtype in inputs.request_fields:
            columns[name] = _inputs.request_column(entities, request, name, dtype)
        names = list(columns)
        rows = ([dict(zip(names, values, strict=True)) for values in zip(*columns.values(),
                                                                         strict=True)]
                if names else [{} for _ in range(n)])
        if n <= INLINE_ENTITY_ROWS:
            results = reader.read(store, plan, rows)
        else:
            results = await asyncio.to_thread(reader.read, store, plan, rows)
        state.metrics.online_entities.inc(n)
        return {"metadata": inputs.metadata, "results": results}

    async def push(call: JsonCall) -> Any:
        """Write rows to the views fed by a push source (online and offline history)."""
        doc = document(call.body)
        name = doc.get("push_source_name")
        if not isinstance(name, str) or not name:
            raise wrong_type("push_source_name", name, "a push source name",
                             '"push_source_name": "txn_push"')
        columns, from_rows = _inputs.push_columns(doc)
        _, catalog = reader.catalog()
        views = push_views(catalog, name)
        source = views[0].source
        stamps = {source.timestamp_field, source.created_timestamp_field}  # type: ignore[union-attr]
        stamps.update(f.name for v in views for f in v.schema if f.dtype == UnixTimestamp)
        if not columns:  # "rows": [] -- nothing to check or write
            return {"push_source_name": name, "rows": 0}

        def convert_and_push() -> int:  # off the event loop: large pushes take milliseconds
            table = _inputs.push_table(columns, [s for s in stamps if s], from_rows)
            return features.push(name, table)

        count = await asyncio.to_thread(convert_and_push)
        state.metrics.pushed_rows.labels(name).inc(count)
        return {"push_source_name": name, "rows": count}

    return Router([
        JsonRoute("/v1/features/online", online_features, access="read", tags=["features"],
                  summary="Read online features", request_model=OnlineFeaturesRequest,
                  response_model=OnlineFeaturesResponse),
        JsonRoute("/v1/push", push, access="write", tags=["features"],
                  summary="Push rows to a push source", request_model=PushRequest,
                  response_model=PushResponse),
    ])
