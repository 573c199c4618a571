"""Column-wise encoding of rows to write: entity keys, times and value payloads, with numpy.

Writing is dominated by per-row Python work (a dict and a `pack` per row), so fixed-width
columns (integers, floats, booleans, timestamps) are encoded for all rows at once: each row's
MessagePack map is a fixed-width numpy record (header, then name, tag and big-endian value
per column), cut into one `bytes` per row. Other columns (strings, arrays, ...) are packed
value by value; a row with a null in a fixed-width column is packed whole, the slow way.
The bytes decode exactly as `pack` output does (integers may use a wider encoding, which
MessagePack allows); entity keys are bit-identical to `encode_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.features.online._codec import encode_key, pack

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = pa.timestamp("us")

# (lowest, highest, type byte or None for a fixint, numpy dtype of the value): MessagePack's
# shortest encoding of an integer, as msgpack's packer chooses it.
_INT_FORMS: tuple[tuple[int, int, int | None, str], ...] = (
    (0, 127, None, "u1"), (-32, -1, None, "i1"),
    (128, 255, 0xCC, "u1"), (256, 2**16 - 1, 0xCD, ">u2"), (2**16, 2**32 - 1, 0xCE, ">u4"),
    (2**32, 2**63 - 1, 0xCF, ">u8"),
    (-128, -33, 0xD0, "i1"), (-(2**15), -129, 0xD1, ">i2"), (-(2**31), -(2**15) - 1, 0xD2, ">i4"),
    (-(2**63), -(2**31) - 1, 0xD3, ">i8"),
)


def _rows_of(records: np.ndarray) -> list[bytes]:
    """One bytes object per record of a structured array."""
    return records.view(np.dtype((np.void, records.dtype.itemsize))).tolist()  # type: ignore[no-any-return]


def _micros(column: pa.Array) -> pa.Array:
    return column.cast(_US).cast(pa.int64())


def pylist(column: pa.Array) -> list[Any]:
    """Column values as Python objects; timestamps as aware UTC datetimes (10x faster than
    Arrow's own `to_pylist` makes zone-aware ones)."""
    if not pa.types.is_timestamp(column.type):
        return column.to_pylist()  # type: ignore[no-any-return]
    return [None if us is None else _EPOCH + timedelta(microseconds=us)
            for us in _micros(column).to_pylist()]


def encode_keys(columns: Sequence[pa.Array]) -> list[bytes]:
    """`encode_key` of every row's join key values (columns in the view's key order)."""
    if len(columns) == 1 and _is_plain_int(columns[0].type) and not columns[0].null_count:
        return _int_keys(columns[0].cast(pa.int64()).to_numpy(zero_copy_only=False))
    values = [c.to_pylist() for c in columns]
    return [encode_key(key) for key in zip(*values, strict=True)]


def _is_plain_int(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) and not pa.types.is_uint64(dtype)


def _int_keys(values: np.ndarray) -> list[bytes]:
    """[v] packed, for int64 values: a fixarray header and the shortest int encoding."""
    out: list[bytes] = [b""] * len(values)
    for low, high, tag, dtype in _INT_FORMS:
        where = np.flatnonzero((values >= low) & (values <= high))
        if not len(where):
            continue
        fields = [("array", "u1")] + ([("tag", "u1")] if tag is not None else [])
        records = np.empty(len(where), [*fields, ("value", dtype)])
        records["array"] = 0x91
        if tag is not None:
            records["tag"] = tag
        records["value"] = values[where]
        for i, key in zip(where.tolist(), _rows_of(records), strict=True):
            out[i] = key
    return out


def encode_times(event_us: Sequence[int], created_us: Sequence[int]) -> list[bytes]:
    """`pack(event_us) + pack(created_us)` of each row, as two int64 MessagePack values."""
    records = np.empty(len(event_us), [("t1", "u1"), ("event", ">i8"), ("t2", "u1"),
                                       ("created", ">i8")])
    records["t1"] = records["t2"] = 0xD3
    records["event"] = event_us
    records["created"] = created_us
    return _rows_of(records)


def _map_header(size: int) -> bytes:
    if size < 16:
        return bytes([0x80 | size])
    return b"\xde" + size.to_bytes(2, "big") if size < 2**16 else b"\xdf" + size.to_bytes(4, "big")


def _fixed_fields(i: int, name: bytes, column: pa.Array) -> tuple[list[Any], Any] | None:
    """The record fields and filler of a fixed-width column (None: not fixed-width)."""
    dtype = column.type
    label = [(f"n{i}", f"V{len(name)}")]
    if pa.types.is_boolean(dtype):
        values = pc.fill_null(column, False).to_numpy(zero_copy_only=False)
        return [*label, (f"v{i}", "u1")], lambda r: r.__setitem__(f"v{i}", 0xC2 + values)
    if _is_plain_int(dtype) or pa.types.is_floating(dtype):
        tag, kind, target = ((0xD3, ">i8", pa.int64()) if pa.types.is_integer(dtype)
                             else (0xCB, ">f8", pa.float64()))
        values = pc.fill_null(column.cast(target), 0).to_numpy(zero_copy_only=False)

        def fill(r: np.ndarray) -> None:
            r[f"t{i}"] = tag
            r[f"v{i}"] = values
        return [*label, (f"t{i}", "u1"), (f"v{i}", kind)], fill
    if pa.types.is_timestamp(dtype):  # the timestamp 96 extension: nanoseconds, seconds
        micros = pc.fill_null(_micros(column), 0).to_numpy(zero_copy_only=False)
        seconds, rest = np.divmod(micros, 1_000_000)

        def fill_ts(r: np.ndarray) -> None:
            r[f"x{i}"] = (0xC7, 12, 0xFF)
            r[f"ns{i}"] = rest * 1_000
            r[f"s{i}"] = seconds
        return [*label, (f"x{i}", "u1", (3,)), (f"ns{i}", ">u4"), (f"s{i}", ">i8")], fill_ts
    return None


def encode_payloads(names: Sequence[str], columns: Sequence[pa.Array]) -> list[bytes]:
    """`pack({name: value, ...})` of every row of the columns, built column-wise."""
    n = len(columns[0]) if columns else 0
    packed_names = [pack(name) for name in names]
    fields: list[Any] = [("header", "u1", (len(_map_header(len(names))),))]
    fillers = []
    null_rows = np.zeros(n, dtype=bool)
    loose: list[tuple[bytes, list[Any]]] = []  # (packed name, values) of the other columns
    for i, (name, column) in enumerate(zip(packed_names, columns, strict=True)):
        fixed = _fixed_fields(i, name, column)
        if fixed is None:
            loose.append((name, pylist(column)))
            continue
        fields += fixed[0]
        fillers.append((i, name, fixed[1]))
        if column.null_count:
            null_rows |= column.is_null().to_numpy(zero_copy_only=False)
    records = np.empty(n, fields)
    records["header"] = np.frombuffer(_map_header(len(names)), "u1")
    for i, name, fill in fillers:
        records[f"n{i}"] = np.frombuffer(name, f"V{len(name)}")[0]
        fill(records)
    payloads = _rows_of(records)
    if loose:
        cells = [[name + pack(v) for v in values] for name, values in loose]
        payloads = [b"".join(parts) for parts in zip(payloads, *cells, strict=True)]
    if null_rows.any():  # rare: pack those rows whole
        by_name = dict(zip(names, columns, strict=True))
        plain = {name: pylist(col) for name, col in by_name.items()}
        for row in np.flatnonzero(null_rows).tolist():
            payloads[row] = pack({name: plain[name][row] for name in names})
    return payloads
