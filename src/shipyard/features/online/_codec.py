"""How online stores encode entity keys and feature values: compact, typed MessagePack."""

from __future__ import annotations

import numbers
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import msgpack

# "No created timestamp": sorts below every real one. A power of two, so it survives the
# trip through a double (Redis Lua numbers) exactly.
NO_CREATED = -(2**62)


def _plain(value: Any) -> Any:
    """A value MessagePack can store: numpy scalars and arrays, pandas timestamps, naive times."""
    if isinstance(value, datetime):
        value = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store a {type(value).__name__} online: {value!r}")


def _deep_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_plain(v) for v in value]
    if isinstance(value, datetime | date) or hasattr(value, "tolist"):
        return _deep_plain(_plain(value))
    return value


_local = threading.local()  # a Packer per thread: `default` runs Python code mid-pack


def pack(value: Any) -> bytes:
    """Encode a value (dict of feature values, key tuple, ...) as MessagePack."""
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(datetime=True, default=_plain)
    try:
        return packer.pack(value)
    except ValueError:  # a naive datetime: msgpack refuses it before asking `default`
        packer.reset()
        return packer.pack(_deep_plain(value))


def unpack(raw: bytes) -> Any:
    """Decode `pack` output; timestamps come back as aware UTC datetimes."""
    return msgpack.unpackb(raw, timestamp=3)


def encode_key(values: Sequence[Any]) -> bytes:
    """The stored form of an entity key: its join key values, in the view's key order.

    Whole floats are stored as ints, so a key read as 1.0 from one source matches 1.
    """
    return pack([int(v) if type(v) is float and v.is_integer() else v for v in values])


def decode_key(raw: bytes) -> tuple[Any, ...]:
    """The join key values of an encoded entity key."""
    return tuple(unpack(raw))


def key_kind(sql_type: str | None) -> type | None:
    """The Python type a join key of SQL type `sql_type` must have (None: not checked)."""
    if sql_type is None:
        return None
    base = sql_type.upper()
    if base in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                "UINTEGER", "UBIGINT"):
        return int
    if base == "VARCHAR":
        return str
    return None


def checked_key(value: Any, kind: type | None) -> Any:
    """`value` normalised to `kind` (numpy ints to int, ...); TypeError when it does not fit."""
    if kind is None or value is None or type(value) is kind:
        return value
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind is str and isinstance(value, str):
        return str(value)
    raise TypeError(value)
