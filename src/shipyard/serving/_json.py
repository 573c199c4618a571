"""Fast JSON in and out (orjson) and the checks that name the offending field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import orjson

from shipyard.core.errors import InvalidInputError
from shipyard.serving.errors import BadRequestError

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):  # pandas Timestamp and other subclasses
        return None if value != value else value.isoformat()  # NaT is not equal to itself
    if hasattr(value, "tolist"):  # numpy scalars orjson does not know, pyarrow scalars
        return value.tolist()
    if hasattr(value, "as_py"):
        return value.as_py()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dump(value: Any) -> bytes:
    """JSON bytes of a value; datetimes as RFC 3339, NaN as null, numpy values as numbers."""
    return orjson.dumps(value, default=_default, option=_DUMP_OPTIONS)


def load(body: bytes) -> Any:
    """The JSON document of a request body; BadRequestError (400) when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"The request body is not valid JSON: {exc}.",
                              hint="Send one JSON document with Content-Type: "
                                   "application/json.") from None


_KIND_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number"}


def kind_name(value: Any) -> str:
    """How JSON calls the type of a value ('an object', 'a string', 'null', ...)."""
    if value is None:
        return "null"
    return _KIND_NAMES.get(type(value), type(value).__name__)


def document(body: Any) -> Mapping[str, Any]:
    """The request document, which must be a JSON object."""
    if not isinstance(body, dict):
        raise InvalidInputError(f"The request body is {kind_name(body)}, not a JSON object.",
                                hint="Send a JSON object, e.g. {\"features\": [...], "
                                     "\"entities\": {...}}.")
    return body


def wrong_type(field: str, value: Any, expected: str, example: str) -> InvalidInputError:
    """The error for field `field` holding `value` instead of `expected`."""
    return InvalidInputError(f"Field {field!r} is {kind_name(value)} ({_short(value)}), "
                             f"expected {expected}.", hint=f"e.g. {example}")


def missing(field: str, example: str) -> InvalidInputError:
    """The error for a required field that is absent."""
    return InvalidInputError(f"Field {field!r} is missing.", hint=f"Add it, e.g. {example}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
