"""Prediction request bodies, checked field by field before they reach a batch.

Three shapes: one row `{"entities": {...}, "request": {...}}`, a list of such rows, or
`{"instances": [...]}` with complete feature rows (objects, or arrays in signature order).
Every error names the field, e.g. `[1].entities.customer_id` or `instances[0].amount`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.core.types import FeatureType
from shipyard.serving._inputs import _fits, timestamp
from shipyard.serving._json import kind_name, missing, wrong_type
from shipyard.serving.inference import LoadedModel, PredictItem

_ROW_EXAMPLE = '{"entities": {"customer_id": 42}, "request": {"amount": 120.5}}'
_INSTANCES_EXAMPLE = '{"instances": [{"amount": 120.5, ...}]}'


def predict_item(body: Any, loaded: LoadedModel, key_kinds: Mapping[str, type | None] | None,
                 request_fields: Sequence[tuple[str, FeatureType]], *, request_id: str,
                 arrived_us: int) -> PredictItem:
    """The rows of a prediction request, checked against the model's inputs."""
    if isinstance(body, dict) and "instances" in body:
        columns, n = instance_columns(body["instances"], loaded)
        return PredictItem(request_id, arrived_us, n, instances=columns)
    if isinstance(body, dict):
        rows, prefixes = [body], [""]
    elif isinstance(body, list) and body:
        rows, prefixes = body, [f"[{i}]." for i in range(len(body))]
    else:
        raise InvalidInputError(f"The request body is {kind_name(body)}"
                                f"{' (empty)' if body == [] else ''}, not a prediction request.",
                                hint=f"Send {_ROW_EXAMPLE}, a list of such rows, or "
                                     f"{_INSTANCES_EXAMPLE}.")
    if key_kinds is None:
        raise InvalidInputError(f"Model {loaded.ref!r} was registered without a feature "
                                "service, so the server cannot look its features up.",
                                hint='Send complete feature rows as "instances".')
    entity_rows = [entity_row(row, prefix, key_kinds, request_fields)
                   for row, prefix in zip(rows, prefixes, strict=True)]
    return PredictItem(request_id, arrived_us, len(entity_rows), entity_rows=entity_rows)


def _object(doc: Any, field: str, *, required: bool) -> dict[str, Any]:
    if doc is None and not required:
        return {}
    if doc is None:
        raise missing(field, _ROW_EXAMPLE)
    if not isinstance(doc, dict):
        raise wrong_type(field, doc, "an object", _ROW_EXAMPLE)
    return doc


def entity_row(row: Any, prefix: str, key_kinds: Mapping[str, type | None],
               request_fields: Sequence[tuple[str, FeatureType]]) -> dict[str, Any]:
    """One row's join keys and request data, as the online reader takes them."""
    row = _object(row, prefix.rstrip(".") or "body", required=True)
    entities = _object(row.get("entities"), f"{prefix}entities", required=True)
    request = _object(row.get("request"), f"{prefix}request", required=False)
    out = dict(entities)
    for key, kind in key_kinds.items():
        field = f"{prefix}entities.{key}"
        if key not in entities:
            raise InvalidInputError(f"Field {field!r} is missing: the model's features are "
                                    f"looked up by join key {key!r}.",
                                    hint=f"Add it, e.g. \"entities\": {{\"{key}\": 42}}.")
        value = entities[key]
        allowed = int | str if kind is None else kind
        if isinstance(value, bool) or not isinstance(value, allowed):
            expected = "an integer" if kind is int else "a string" if kind is str \
                else "an integer or a string"
            raise wrong_type(field, value, expected, f'"entities": {{"{key}": 42}}')
    for name, dtype in request_fields:
        where = "request" if name in request else "entities"
        value = request.get(name, entities.get(name))
        field = f"{prefix}{where}.{name}"
        if value is None:
            raise missing(f"{prefix}request.{name}", f'"request": {{"{name}": ...}} '
                          f"({dtype.name}, used by an on-demand feature)")
        if not _fits(value, dtype):
            raise wrong_type(field, value, dtype.name, f'"request": {{"{name}": ...}}')
        out[name] = value
    return out


def instance_columns(instances: Any, loaded: LoadedModel) -> tuple[dict[str, list[Any]], int]:
    """Complete feature rows (objects, or arrays in signature order) as the model's columns."""
    names = [c.name for c in loaded.inputs]
    if not isinstance(instances, list) or not instances:
        raise wrong_type("instances", instances, "a non-empty array of rows", _INSTANCES_EXAMPLE)
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(instances):
        if isinstance(row, list):
            if len(row) != len(names):
                raise InvalidInputError(f"Field 'instances[{i}]' has {len(row)} values; the "
                                        f"model takes {len(names)}.",
                                        hint=f"Send them in this order: {names}, or send an "
                                             "object per row.")
            row = dict(zip(names, row, strict=True))
        elif not isinstance(row, dict):
            raise wrong_type(f"instances[{i}]", row, "an object or an array",
                             _INSTANCES_EXAMPLE)
        for column in loaded.inputs:
            if column.name not in row:
                raise missing(f"instances[{i}].{column.name}",
                              f'"{column.name}": ... ({column.dtype.name}; null if unknown)')
            value = row[column.name]
            if not _fits(value, column.dtype):
                raise wrong_type(f"instances[{i}].{column.name}", value,
                                 f"{column.dtype.name} (or null)", _INSTANCES_EXAMPLE)
            if column.dtype.name == "UnixTimestamp":
                value = timestamp(value, f"instances[{i}].{column.name}")
            columns[column.name].append(value)
    return columns, len(instances)
