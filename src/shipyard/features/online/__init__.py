"""Online stores: the latest feature values per entity key, for low-latency reads.

A store keeps, per (project, view, entity key), one row: its event time, created time and
feature values. `write` applies the newer-wins rule atomically inside the store: a row whose
(event time, created time) is older than the stored one is ignored, so materialization runs,
pushes and reruns can interleave in any order. Times are integer microseconds since the
epoch (UTC); entity keys are `encode_key(...)` bytes; values keep their Python types.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, overload

import numpy as np

from shipyard.features.online._codec import NO_CREATED, decode_key, encode_key, pack, unpack

__all__ = ["NO_CREATED", "EncodedRows", "OnlineRow", "OnlineStore", "StoredRow", "decode_key",
           "encode_key", "encoded", "from_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_micros(us: int) -> datetime:
    """An aware UTC datetime from integer microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=us)


class OnlineRow(NamedTuple):
    """One entity's feature values to write, with the times that order it."""

    key: bytes
    event_us: int
    created_us: int  # NO_CREATED when the source has no created timestamp
    values: dict[str, Any]


class EncodedRows(Sequence[OnlineRow]):
    """Rows to write as columns: keys, times and the MessagePack payloads of their values.

    What materialization and push hand to `OnlineStore.write`: a store takes the columns as
    they are (no per-row work); anything else sees ordinary `OnlineRow`s. `unique=True`
    promises one row per key (materialization's scan, a push reduced by `latest_per_key`),
    so `latest()` has nothing to do.
    """

    __slots__ = ("created_us", "event_us", "keys", "payloads", "unique")

    def __init__(self, keys: list[bytes], event_us: list[int], created_us: list[int],
                 payloads: list[bytes], *, unique: bool = False) -> None:
        self.keys, self.event_us, self.created_us = keys, event_us, created_us
        self.payloads = payloads
        self.unique = unique

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> OnlineRow: ...
    @overload
    def __getitem__(self, index: slice) -> EncodedRows: ...

    def __getitem__(self, index: int | slice) -> OnlineRow | EncodedRows:
        if isinstance(index, slice):
            return EncodedRows(self.keys[index], self.event_us[index], self.created_us[index],
                               self.payloads[index], unique=self.unique)
        return OnlineRow(self.keys[index], self.event_us[index], self.created_us[index],
                         unpack(self.payloads[index]))

    def __iter__(self) -> Iterator[OnlineRow]:
        for key, event, created, payload in zip(self.keys, self.event_us, self.created_us,
                                                self.payloads, strict=True):
            yield OnlineRow(key, event, created, unpack(payload))

    def latest(self) -> EncodedRows:
        """One row per key: the one newer-wins would leave (the newest; the last of equals).

        A store writes this instead of every row: a push of many events per key costs one
        write per key, with the same end state.
        """
        if self.unique:
            return self
        keys = self.keys
        codes: dict[bytes, int] = {}
        key_codes = [codes.setdefault(key, len(codes)) for key in keys]
        if len(codes) == len(keys):
            self.unique = True
            return self
        # sort by (key, event, created, position); the last row of each key is the keeper
        order = np.lexsort((np.arange(len(keys)), np.asarray(self.created_us, np.int64),
                            np.asarray(self.event_us, np.int64), np.asarray(key_codes)))
        sorted_codes = np.asarray(key_codes)[order]
        last = np.append(sorted_codes[1:] != sorted_codes[:-1], True)
        keep = np.sort(order[last]).tolist()
        return EncodedRows([keys[i] for i in keep], [self.event_us[i] for i in keep],
                           [self.created_us[i] for i in keep], [self.payloads[i] for i in keep],
                           unique=True)


def encoded(rows: Sequence[OnlineRow]) -> EncodedRows:
    """Rows as columns (payloads packed); EncodedRows come back as they are."""
    if isinstance(rows, EncodedRows):
        return rows
    return EncodedRows([r.key for r in rows], [r.event_us for r in rows],
                       [r.created_us for r in rows], [pack(r.values) for r in rows])


class StoredRow(NamedTuple):
    """One entity's stored feature values and the event time they are from."""

    event_us: int
    values: dict[str, Any]


class OnlineStore(Protocol):
    """Latest feature values per entity key of each view of one project."""

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Store rows unless the store (or the call) holds a newer one for the key; return how
        many were."""
        ...

    def read(self, view: str, keys: Sequence[bytes]) -> list[StoredRow | None]:
        """The stored row of each key (None: unknown key), in one round trip."""
        ...

    def drop(self, view: str) -> None:
        """Delete every row of a view (and its newest event time)."""
        ...

    def newest_event_times(self) -> dict[str, datetime]:
        """The newest event time (aware UTC) ever written to each view; views never written
        (or dropped since) are absent.

        Every `write` (materialization or push) raises its view's time to the newest event
        time of its rows, never lowers it: an older row a write ignores was older than a
        stored one, so the time is that of the newest value the store holds.
        """
        ...

    def ping(self) -> None:
        """Return when the store answers; raise BackendUnavailable otherwise."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
