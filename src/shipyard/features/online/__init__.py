"""Online stores: the latest feature values per entity key, for low-latency reads.

A store keeps, per (project, view, entity key), one row: its event time, created time and
feature values. `write` applies the newer-wins rule atomically inside the store: a row whose
(event time, created time) is older than the stored one is ignored, so materialization runs,
pushes and reruns can interleave in any order. Times are integer microseconds since the
epoch (UTC); entity keys are `encode_key(...)` bytes; values keep their Python types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from shipyard.features.online._codec import NO_CREATED, decode_key, encode_key

__all__ = ["NO_CREATED", "OnlineRow", "OnlineStore", "StoredRow", "decode_key", "encode_key"]


class OnlineRow(NamedTuple):
    """One entity's feature values to write, with the times that order it."""

    key: bytes
    event_us: int
    created_us: int  # NO_CREATED when the source has no created timestamp
    values: dict[str, Any]


class StoredRow(NamedTuple):
    """One entity's stored feature values and the event time they are from."""

    event_us: int
    values: dict[str, Any]


class OnlineStore(Protocol):
    """Latest feature values per entity key of each view of one project."""

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Store rows unless the store holds a newer one for the key; return how many were."""
        ...

    def read(self, view: str, keys: Sequence[bytes]) -> list[StoredRow | None]:
        """The stored row of each key (None: unknown key), in one round trip."""
        ...

    def drop(self, view: str) -> None:
        """Delete every row of a view."""
        ...

    def ping(self) -> None:
        """Return when the store answers; raise BackendUnavailable otherwise."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
