"""Segment files: length- and CRC-prefixed msgpack records, appended; a torn tail is ignored.

A frame is `<u32 length><u32 crc32 of the payload><payload>` (little-endian). After a crash
(kill -9, power loss) only the last frame can be incomplete; readers stop at the first frame
that is short or fails its checksum.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack

_HEADER = struct.Struct("<II")
SUFFIX = ".seg"


def _default(value: Any) -> Any:
    """msgpack fallback: numpy scalars and arrays as Python values, times as ISO text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def encode_frame(record: dict[str, Any]) -> bytes:
    """One frame holding `record`."""
    payload = msgpack.packb(record, default=_default, use_bin_type=True)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_frames(data: bytes) -> Iterator[dict[str, Any]]:
    """The records of a segment's bytes, up to the first torn or corrupt frame."""
    offset, end = 0, len(data)
    while offset + _HEADER.size <= end:
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start:start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        yield msgpack.unpackb(payload, raw=False, strict_map_key=False)
        offset = start + length


def read_segment(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a segment file (FileNotFoundError if it is gone)."""
    return list(decode_frames(path.read_bytes()))
