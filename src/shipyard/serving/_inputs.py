"""Request documents of the feature routes, checked field by field (errors name the field)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from shipyard.core.errors import InvalidInputError
from shipyard.core.types import Array, FeatureType
from shipyard.serving._json import kind_name, missing, wrong_type

_ENTITIES_EXAMPLE = '"entities": {"customer_id": [1, 2]}'
UTC_US = pa.timestamp("us", tz="UTC")


def optional_bool(doc: Mapping[str, Any], name: str) -> bool:
    """A boolean field, False when absent."""
    value = doc.get(name, False)
    if not isinstance(value, bool):
        raise wrong_type(name, value, "true or false", f'"{name}": true')
    return value


def feature_selection(doc: Mapping[str, Any]) -> tuple[list[str] | None, str | None]:
    """`features` (a list of 'view:feature') or `feature_service` (a name): exactly one."""
    features, service = doc.get("features"), doc.get("feature_service")
    if features is None and service is None:
        raise InvalidInputError("The request has neither 'features' nor 'feature_service'.",
                                hint='Add one, e.g. "features": ["customer_stats:txn_count"].')
    if features is not None and service is not None:
        raise InvalidInputError("The request has both 'features' and 'feature_service'.",
                                hint="Send only one of them.")
    if features is not None:
        if not isinstance(features, list) or not features:
            raise wrong_type("features", features, "a non-empty array of 'view:feature' strings",
                             '"features": ["customer_stats:txn_count"]')
        for i, ref in enumerate(features):
            if not isinstance(ref, str):
                raise wrong_type(f"features[{i}]", ref, "a 'view:feature' string",
                                 '"features": ["customer_stats:txn_count"]')
    elif not isinstance(service, str) or not service:
        raise wrong_type("feature_service", service, "a feature service name",
                         '"feature_service": "fraud_v1"')
    return features, service


def columns_field(doc: Mapping[str, Any], name: str, *, required: bool, example: str
                  ) -> dict[str, list[Any]]:
    """An object of column name to array (`entities`, `request`, push `columns`)."""
    value = doc.get(name)
    if value is None:
        if required:
            raise missing(name, example)
        return {}
    if not isinstance(value, dict):
        raise wrong_type(name, value, "an object of column name to array", example)
    for column, values in value.items():
        if not isinstance(values, list):
            raise wrong_type(f"{name}.{column}", values, "an array (one value per row)",
                             example)
    return value


def row_count(fields: Mapping[str, Mapping[str, list[Any]]]) -> int:
    """The common length of the columns of every field (e.g. `entities` and `request`)."""
    n = None
    for prefix, columns in fields.items():
        for column, values in columns.items():
            if n is None:
                n, first = len(values), f"{prefix}.{column}"
            elif len(values) != n:
                raise InvalidInputError(f"Field '{prefix}.{column}' has {len(values)} values "
                                        f"but '{first}' has {n}.",
                                        hint="Send one value per entity row in every column.")
    return n or 0


def key_column(entities: Mapping[str, list[Any]], key: str, kind: type | None) -> list[Any]:
    """The values of join key `key`: `kind` (int or str) when known; null is an unknown key."""
    values = entities.get(key)
    if values is None:
        raise InvalidInputError(f"Field 'entities.{key}' is missing: the features read need "
                                f"join key {key!r}.",
                                hint=f"Its entity columns are {sorted(entities)}; add "
                                     f'"{key}": [...] to "entities".')
    allowed = int | str | None if kind is None else kind | None
    expected = {int: "an integer", str: "a string"}.get(kind, "an integer or a string")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise wrong_type(f"entities.{key}[{i}]", value, expected, _ENTITIES_EXAMPLE)
    return values


def _fits(value: Any, dtype: FeatureType) -> bool:
    if value is None:
        return True
    if isinstance(dtype, Array):
        return isinstance(value, list) and all(_fits(v, dtype.element) for v in value)
    name = dtype.name
    if name in ("Int32", "Int64"):
        return isinstance(value, int) and not isinstance(value, bool)
    if name in ("Float32", "Float64"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "String":
        return isinstance(value, str)
    if name == "Bool":
        return isinstance(value, bool)
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def request_column(entities: Mapping[str, list[Any]], request: Mapping[str, list[Any]],
                   name: str, dtype: FeatureType) -> list[Any]:
    """The request data `name` (from `request`, else `entities`), checked against its dtype."""
    where, values = ("request", request.get(name))
    if values is None:
        where, values = ("entities", entities.get(name))
    if values is None:
        raise InvalidInputError(f"Field 'request.{name}' is missing: an on-demand feature "
                                f"needs request data {name!r} ({dtype.name}).",
                                hint=f'Add "request": {{"{name}": [...]}}.')
    for i, value in enumerate(values):
        if not _fits(value, dtype):
            raise wrong_type(f"{where}.{name}[{i}]", value, f"{dtype.name} (or null)",
                             f'"request": {{"{name}": [...]}}')
    if dtype.name == "UnixTimestamp":
        return [timestamp(v, f"{where}.{name}[{i}]") for i, v in enumerate(values)]
    return values


def timestamp(value: Any, field: str) -> datetime | None:
    """An ISO 8601 string (naive means UTC) or epoch seconds, as an aware UTC datetime."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise wrong_type(field, value, "an ISO 8601 timestamp or epoch seconds",
                     '"2024-05-01T12:00:00Z"')


def push_columns(doc: Mapping[str, Any]) -> tuple[dict[str, list[Any]], bool]:
    """The pushed rows as columns, from `rows` (objects) or `columns` (arrays): exactly one.

    Returns the columns and whether they came from `rows` (for naming fields in errors).
    """
    rows, columns = doc.get("rows"), doc.get("columns")
    if (rows is None) == (columns is None):
        raise InvalidInputError("Send exactly one of 'rows' (an array of objects) and "
                                "'columns' (an object of arrays).",
                                hint='e.g. "rows": [{"customer_id": 1, "event_timestamp": '
                                     '"2024-05-01T12:00:00Z", ...}].')
    if columns is not None:
        out = columns_field(doc, "columns", required=True, example='"columns": {"x": [1, 2]}')
        row_count({"columns": out})
        return out, False
    if not isinstance(rows, list):
        raise wrong_type("rows", rows, "an array of objects", '"rows": [{"customer_id": 1}]')
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise wrong_type(f"rows[{i}]", row, "an object", '"rows": [{"customer_id": 1}]')
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}, True


def push_table(columns: Mapping[str, list[Any]], timestamp_columns: Sequence[str],
               from_rows: bool) -> pa.Table:
    """Pushed columns as an Arrow table; timestamp columns parsed, each column one type."""
    def field(column: str, i: int | None = None) -> str:
        if from_rows:
            return f"rows[{i}].{column}" if i is not None else f"rows[*].{column}"
        return f"columns.{column}" + (f"[{i}]" if i is not None else "")

    arrays = {}
    for name, values in columns.items():
        if name in timestamp_columns:
            parsed = [timestamp(v, field(name, i)) for i, v in enumerate(values)]
            arrays[name] = pa.array(parsed, UTC_US)
            continue
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            kinds = sorted({kind_name(v) for v in values if v is not None})
            raise InvalidInputError(f"Field {field(name)!r} mixes values of types "
                                    f"{', '.join(kinds)}.",
                                    hint="Give every row the same type in a column.") from None
    return pa.table(arrays)
