"""Offline stores: point-in-time joins over the sources' full history."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pyarrow as pa

from shipyard.core.types import Field
from shipyard.features.definitions import FileSource

ROW = "__row"  # the entity row number, so results keep the entity frame's order and count
TS = "__ts"  # the entity row's timestamp, naive UTC


@dataclass(frozen=True)
class ViewRead:
    """One feature view as an offline engine needs it: where, which keys, which features."""

    name: str
    source: FileSource
    join_keys: tuple[str, ...]
    features: tuple[Field, ...]
    ttl_seconds: int | None

    def column(self, feature: str) -> str:
        """The engine's output column for a feature: 'view__feature'."""
        return f"{self.name}__{feature}"


@dataclass(frozen=True)
class LatestRows:
    """The latest row per entity key of one view, streamed as Arrow record batches.

    Columns: the join keys, `__t` (event time, naive UTC), `__c` (created time, when the
    source has one) and 'view__feature' per feature.
    """

    total_rows: int
    batches: Iterator[pa.RecordBatch]


class OfflineStore(Protocol):
    """Full feature history, joined point-in-time to entity rows."""

    def describe_source(self, source: FileSource) -> dict[str, str]:
        """Column name to SQL type of a source, as stored (before field mapping)."""
        ...

    def point_in_time_join(self, entities: pa.Table, views: Sequence[ViewRead], *,
                           filter_by_created_timestamp: bool = False) -> pa.Table:
        """Features for each entity row (`__row`, keys, `__ts`), in `__row` order."""
        ...

    def entity_rows(self, views: Sequence[ViewRead], start: datetime, end: datetime) -> pa.Table:
        """Distinct (keys, `__ts`) of every feature row of the views with start <= ts <= end."""
        ...

    def scan_latest_rows(self, view: ViewRead, *, start: datetime | None, end: datetime,
                         batch_rows: int = 65_536) -> LatestRows:
        """Per key, the row the point-in-time rule picks for `end`, among rows from `start` on."""
        ...

    def write_rows(self, source: FileSource, rows: pa.Table) -> None:
        """Append rows (named like the source's columns) to its history, durably."""
        ...

    def close(self) -> None:
        """Release the engine's resources."""
        ...
