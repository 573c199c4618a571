"""Materialization: per entity key, the latest offline row, streamed in chunks online.

Each chunk is written with the store's newer-wins rule, so a rerun is idempotent and never
replaces a newer value (say, from a push) with an older one. Incremental runs start at a
per-view watermark kept in the metadata database, moved to `end` only after every chunk of
the view is written: a run that fails part-way is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.time import to_utc, utc_now
from shipyard.features.catalog import Catalog
from shipyard.features.definitions import FeatureView, file_source_of
from shipyard.features.offline import OfflineStore, ViewRead
from shipyard.features.online import NO_CREATED, EncodedRows, OnlineStore
from shipyard.features.online._encode import encode_keys, encode_payloads
from shipyard.metadata.db import Database
from shipyard.metadata.tables import materialization_watermarks as wm

Progress = Callable[[str, int, int], None]  # (view name, rows done, rows in total)
BATCH_ROWS = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MaterializedView:
    """What one view's materialization did."""

    view: str
    start: datetime | None  # None: from the beginning (or the ttl)
    end: datetime
    rows: int  # latest rows read from the offline store
    written: int  # rows the online store took (older than what it held: skipped)


def view_read(catalog: Catalog, view: FeatureView) -> ViewRead:
    """A whole feature view as the offline store reads it."""
    return ViewRead(name=view.name, source=file_source_of(view.source),
                    join_keys=catalog.join_keys(view), features=tuple(view.schema),
                    ttl_seconds=None if view.ttl is None else int(view.ttl.total_seconds()))


def select_views(catalog: Catalog, names: Sequence[str] | None) -> list[FeatureView]:
    """The online views to materialize: those named, or every online view."""
    if names is None:
        return [v for v in catalog.feature_views.values() if v.online]
    if isinstance(names, str):
        names = [names]
    views = []
    for name in names:
        view = catalog.feature_views.get(name)
        if view is None:
            raise NotFoundError(f"Feature view {name!r} is not defined.",
                                hint=f"Known views: {sorted(catalog.feature_views)}.")
        if not view.online:
            raise InvalidInputError(f"Feature view {name!r} is not served online (online=False).",
                                    hint="Set online=True and run `shipyard apply`.")
        views.append(view)
    return views


def online_rows(read: ViewRead, batch: pa.RecordBatch, *, unique: bool = False) -> EncodedRows:
    """A batch of `scan_latest_rows` as rows for the online store, encoded column-wise.

    `unique=True` promises one row per key (a scan, or a batch reduced by `latest_per_key`).
    """
    keys = encode_keys([batch.column(k) for k in read.join_keys])
    events = _micros(batch.column("__t"))
    created = (pc.fill_null(_micros_array(batch.column("__c")), NO_CREATED).to_pylist()
               if "__c" in batch.schema.names else [NO_CREATED] * batch.num_rows)
    names = [f.name for f in read.features]
    payloads = encode_payloads(names, [batch.column(read.column(name)) for name in names])
    return EncodedRows(keys, events, created, payloads, unique=unique)


def latest_per_key(batch: pa.RecordBatch, join_keys: Sequence[str]) -> tuple[pa.RecordBatch, bool]:
    """Per key, the row newer-wins keeps (latest `__t`, then `__c` with null lowest, then the
    last given); and whether the keys are now unique as the online store sees them.

    A push of many events per key then encodes and writes one row per key. Keys other than
    integers and strings (floats: 1.0 and 1 are one stored key) are left to the store's own
    `EncodedRows.latest()`.
    """
    n = batch.num_rows
    key_columns = [batch.column(k) for k in join_keys]
    exact = all(pa.types.is_integer(c.type) or pa.types.is_string(c.type)
                or pa.types.is_large_string(c.type) for c in key_columns)
    if n < 2:
        return batch, exact
    order_by = {f"k{i}": c for i, c in enumerate(key_columns)}
    order_by["t"] = batch.column("__t")
    if "__c" in batch.schema.names:
        order_by["c"] = pc.fill_null(_micros_array(batch.column("__c")), NO_CREATED)
    order_by["p"] = pa.array(np.arange(n))
    order = pc.sort_indices(pa.table(order_by), sort_keys=[(c, "ascending") for c in order_by])
    last = np.ones(n, dtype=bool)
    changes = np.zeros(n - 1, dtype=bool)
    for column in key_columns:
        ordered = column.take(order)
        changes |= pc.fill_null(pc.not_equal(ordered[1:], ordered[:-1]), True).to_numpy(
            zero_copy_only=False)
    last[:-1] = changes
    if last.all():
        return batch, exact  # already one row per key
    return batch.take(order.filter(pa.array(last))), exact


def _micros_array(column: pa.Array) -> pa.Array:
    return column.cast(pa.timestamp("us")).cast(pa.int64())


def _micros(column: pa.Array) -> list[int]:
    return _micros_array(column).to_pylist()  # type: ignore[no-any-return]


def materialize_view(offline: OfflineStore, online: OnlineStore, read: ViewRead,
                     start: datetime | None, end: datetime, progress: Progress | None = None,
                     ) -> MaterializedView:
    """Write a view's latest rows for `end` (from `start` on) to the online store."""
    latest = offline.scan_latest_rows(read, start=start, end=end, batch_rows=BATCH_ROWS)
    done = written = 0
    if progress:
        progress(read.name, 0, latest.total_rows)
    for batch in latest.batches:
        written += online.write(read.name, online_rows(read, batch, unique=True))
        done += batch.num_rows
        if progress:
            progress(read.name, done, latest.total_rows)
    return MaterializedView(read.name, start, end, done, written)


def _window(start: datetime | str | None, end: datetime | str) -> tuple[datetime | None, datetime]:
    begin = None if start is None else to_utc(start)
    finish = to_utc(end)
    if begin is not None and begin > finish:
        raise InvalidInputError(f"Materialization start {begin.isoformat()} is after its end "
                                f"{finish.isoformat()}.", hint="Pass start <= end.")
    return begin, finish


def materialize(offline: OfflineStore, online: OnlineStore, catalog: Catalog,
                start: datetime | str | None, end: datetime | str, *,
                views: Sequence[str] | None = None, progress: Progress | None = None,
                ) -> list[MaterializedView]:
    """Load, per key, the latest row with start <= ts <= end of each view into the store."""
    begin, finish = _window(start, end)
    return [materialize_view(offline, online, view_read(catalog, view), begin, finish, progress)
            for view in select_views(catalog, views)]


def materialize_incremental(offline: OfflineStore, online: OnlineStore, catalog: Catalog,
                            watermarks: Watermarks, end: datetime | str, *,
                            views: Sequence[str] | None = None, progress: Progress | None = None,
                            ) -> list[MaterializedView]:
    """Materialize each view from its watermark to `end`, then move the watermark to `end`."""
    _, finish = _window(None, end)
    done = []
    for view in select_views(catalog, views):
        begin = watermarks.get(view.name)
        result = materialize_view(offline, online, view_read(catalog, view), begin, finish,
                                  progress)
        watermarks.advance(view.name, finish)
        done.append(result)
    return done


class Watermarks:
    """Per view, the time up to which incremental materialization has completed."""

    def __init__(self, db: Database, project: str) -> None:
        self.db = db
        self.project = project

    def list_all(self) -> dict[str, datetime]:
        """Every view's watermark."""
        query = sa.select(wm.c.view, wm.c.watermark).where(wm.c.project == self.project)
        with self.db.read() as conn:
            return {view: to_utc(ts) for view, ts in conn.execute(query)}

    def get(self, view: str) -> datetime | None:
        """A view's watermark (None: never materialized incrementally)."""
        query = sa.select(wm.c.watermark).where(wm.c.project == self.project, wm.c.view == view)
        with self.db.read() as conn:
            ts = conn.execute(query).scalar()
        return None if ts is None else to_utc(ts)

    def advance(self, view: str, to: datetime) -> None:
        """Move a view's watermark forward to `to` (never back)."""
        key = (wm.c.project == self.project) & (wm.c.view == view)
        with self.db.write() as conn:
            current = conn.execute(sa.select(wm.c.watermark).where(key)).scalar()
            if current is None:
                conn.execute(wm.insert().values(project=self.project, view=view, watermark=to,
                                                updated_at=utc_now()))
            elif to_utc(current) < to:
                conn.execute(wm.update().where(key).values(watermark=to, updated_at=utc_now()))

    def reset(self, view: str) -> None:
        """Forget a view's watermark: the next incremental run starts from the beginning."""
        with self.db.write() as conn:
            conn.execute(wm.delete().where((wm.c.project == self.project) & (wm.c.view == view)))
