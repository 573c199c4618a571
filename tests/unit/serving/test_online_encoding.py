"""The column-wise write encoding (features/online/_encode.py) that push and materialize use.

It lives here, with the feature server's write path, and checks that every value decodes
exactly as the per-row `pack` would have stored it and that keys are bit-identical.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pytest

from shipyard.features.materialize import latest_per_key
from shipyard.features.online import EncodedRows, OnlineRow, encoded
from shipyard.features.online._codec import encode_key, pack, unpack
from shipyard.features.online._encode import encode_keys, encode_payloads, encode_times, pylist

BOUNDS = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**63 - 1, -1, -32, -33,
          -128, -129, -(2**15), -(2**15) - 1, -(2**31), -(2**31) - 1, -(2**63), 1_000_123]


@pytest.mark.parametrize("arrow_type", [pa.int64(), pa.int32(), pa.uint32(), pa.int8()])
def test_int_keys_are_bit_identical_to_encode_key(arrow_type: pa.DataType) -> None:
    values = [v for v in BOUNDS if _fits(v, arrow_type)]
    column = pa.array(values, pa.int64()).cast(arrow_type)
    assert encode_keys([column]) == [encode_key([v]) for v in values]


def _fits(value: int, arrow_type: pa.DataType) -> bool:
    info = np.iinfo(arrow_type.to_pandas_dtype())
    return bool(info.min <= value <= info.max)


def test_other_keys_fall_back_to_encode_key() -> None:
    strings, ints = pa.array(["a", "é", ""]), pa.array([1, 2, 3])
    assert encode_keys([strings]) == [encode_key([s]) for s in ["a", "é", ""]]
    assert encode_keys([ints, strings]) == [encode_key(k) for k in [(1, "a"), (2, "é"), (3, "")]]
    assert encode_keys([pa.array([1.0, 2.0])]) == [encode_key([1]), encode_key([2])]
    assert encode_keys([pa.array([1, None])]) == [encode_key([1]), encode_key([None])]


def test_payloads_decode_like_pack() -> None:
    ts = [datetime(2024, 5, 1, 12, 0, 0, 123_456, tzinfo=UTC), None,
          datetime(1960, 1, 1, 0, 0, 0, 1, tzinfo=UTC)]
    columns = {
        "i64": pa.array([1, None, -(2**63)], pa.int64()),
        "i32": pa.array([2**31 - 1, 5, None], pa.int32()),
        "u64": pa.array([2**64 - 1, 0, None], pa.uint64()),
        "f64": pa.array([1.5, float("nan"), None]),
        "f32": pa.array([0.1, 2.5, None], pa.float32()),
        "flag": pa.array([True, False, None]),
        "s": pa.array(["x", None, "é" * 40]),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "ts_ns": pa.array([0, None, 1_700_000_000_000_000_000], pa.timestamp("ns")),
        "d": pa.array([date(2024, 1, 2), None, date(1999, 12, 31)]),
        "tags": pa.array([[1, 2], None, []]),
    }
    for subset in (["i64", "f64"], ["flag", "f32", "ts"], list(columns)):
        arrays = [columns[c] for c in subset]
        got = [unpack(p) for p in encode_payloads(subset, arrays)]
        want = [unpack(pack(dict(zip(subset, row, strict=True))))
                for row in zip(*(pylist(a) for a in arrays), strict=True)]
        assert _same(got, want), (subset, got, want)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_times_and_encoded_rows() -> None:
    times = encode_times([1_700_000_000_000_000, 0], [-(2**62), 5])
    assert [unpack(b"\x92" + t) for t in times] == [[1_700_000_000_000_000, -(2**62)], [0, 5]]
    rows = [OnlineRow(b"k1", 1, 2, {"a": 1}), OnlineRow(b"k2", 3, 4, {"b": None})]
    batch = encoded(rows)
    assert isinstance(batch, EncodedRows) and encoded(batch) is batch
    assert list(batch) == rows and batch[1] == rows[1] and list(batch[1:]) == rows[1:]
    assert len(batch) == 2



def test_latest_keeps_what_newer_wins_would() -> None:
    rows = EncodedRows([b"a", b"b", b"a", b"a", b"b", b"c"], [5, 1, 7, 7, 0, 3],
                       [0, 0, 1, 1, 9, 0], [b"a5", b"b1", b"a7", b"a7-last", b"b0", b"c3"])
    latest = rows.latest()
    assert list(zip(latest.keys, latest.payloads, strict=True)) == [
        (b"b", b"b1"), (b"a", b"a7-last"), (b"c", b"c3")]
    unique = EncodedRows([b"x", b"y"], [1, 2], [0, 0], [b"1", b"2"])
    assert unique.latest() is unique


def test_latest_per_key_reduces_a_push_before_encoding() -> None:
    t = pa.array([5, 1, 7, 7, 0, 3, 7], pa.timestamp("us", tz="UTC"))
    batch = pa.record_batch({
        "id": pa.array([1, 2, 1, 1, 2, 1, 1]), "shop": pa.array(["a", "a", "a", "a", "a", "b", "a"]),
        "__t": t, "__c": pa.array([0, 0, 1, 1, 9, 0, None], pa.timestamp("us", tz="UTC")),
        "v": pa.array(["1a5", "2a1", "1a7", "1a7-last", "2a0", "1b3", "1a7-no-created"])})
    latest, exact = latest_per_key(batch, ["id", "shop"])
    assert exact and sorted(latest.column("v").to_pylist()) == ["1a7-last", "1b3", "2a1"]
    same, _ = latest_per_key(batch.slice(4, 2), ["id", "shop"])
    assert same.equals(batch.slice(4, 2))  # unique keys: returned as they are
    floats = pa.record_batch({"k": pa.array([1.0, 1.0]), "__t": t[:2], "v": pa.array([1, 2])})
    reduced, exact = latest_per_key(floats, ["k"])
    assert not exact and reduced.column("v").to_pylist() == [1]
