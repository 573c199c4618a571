"""The local engine's point-in-time join: a view's rows loaded once, then searched per chunk.

The rule is the offline store's (DESIGN.md): per entity row, the view row with the same keys
and the largest event time t <= T, ties going to the largest created time (a null created
time loses), and null when that t is older than T - ttl. DuckDB sorts the view's rows for
every query; a batch job joins thousands of chunks against the same rows, so they are sorted
once instead. Each row gets one int64 sort key, `key rank * (times + 1) + time rank`, and a
chunk's matches are one `searchsorted` away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.core.errors import InvalidInputError
from shipyard.features.definitions import FileSource
from shipyard.features.offline import ROW, TS, ViewRead

_ORDER = "__order"


def _normalized(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A key column in a type both sides share: integers as int64, text as string."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_integer(array.type):
        return array.cast(pa.int64())
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array.cast(pa.string())
    return array


def micros(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Timestamps (any unit, naive UTC) as int64 microseconds; nulls as the smallest int64."""
    as_us = pc.cast(column, pa.timestamp("us")).cast(pa.int64())
    return np.asarray(pc.fill_null(as_us, np.iinfo(np.int64).min))


def _key_codes(columns: Sequence[pa.Array], uniques: Sequence[pa.Array],
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per row, one int64 code of its key values (their positions in `uniques`), and whether
    every value is among them."""
    rows = len(columns[0])
    code, found, scale = np.zeros(rows, np.int64), np.ones(rows, bool), 1
    for column, values in zip(columns, uniques, strict=True):
        position = pc.index_in(_normalized(column), value_set=values)
        found &= np.asarray(position.is_valid())
        code += np.asarray(pc.fill_null(position, 0)).astype(np.int64) * scale
        scale *= max(len(values), 1)
    if scale >= 2**62:
        raise InvalidInputError("A view has too many distinct key combinations to index.",
                                hint="Use the Spark engine (engine='spark') for this job.")
    return code, found


@dataclass(frozen=True)
class ViewIndex:
    """One view's rows, sorted for as-of lookups, and the tables that place a key among them."""

    read: ViewRead
    rows: pa.Table  # '__order' then 'view__feature' columns, in '__order' (then created) order
    times: np.ndarray  # the distinct event times, int64 microseconds, ascending
    keys: tuple[pa.Array, ...]  # per join key, its distinct values
    codes: np.ndarray  # the distinct key codes (see `_key_codes`), ascending

    @classmethod
    def build(cls, read: ViewRead, rows: pa.Table) -> ViewIndex:
        """Index `rows` of `read` (as `scan_rows` returns them: no null keys or times; rows
        already sorted by key, time and created time are taken as they are)."""
        keys = tuple(pc.unique(_normalized(rows.column(k))) for k in read.join_keys)
        code, _ = _key_codes([rows.column(k) for k in read.join_keys], keys)
        codes = np.unique(code)
        t = micros(rows.column("__t"))
        times = np.unique(t)
        order = (np.searchsorted(codes, code) * (len(times) + 1)
                 + np.searchsorted(times, t) + 1)
        created = (micros(rows.column("__c")) if "__c" in rows.column_names
                   else np.zeros(len(t), np.int64))
        features = rows.select([read.column(f.name) for f in read.features])
        step, later = np.diff(order), np.diff(created)
        if not np.all((step > 0) | ((step == 0) & (later >= 0))):  # not in (key, t, c) order
            sort = np.lexsort((created, order))  # equal (key, t): the latest created sorts last
            features, order = features.take(pa.array(sort)), order[sort]
        table = features.add_column(0, _ORDER, pa.array(order))
        return cls(read, table.combine_chunks(), times, keys, codes)

    def lookup(self, keys: Sequence[pa.Array], at: np.ndarray) -> pa.Array:
        """For entity rows (key columns, times in microseconds), the row each one joins, or null."""
        width = len(self.times) + 1
        found = np.zeros(len(at), bool)
        position = np.zeros(len(at), np.int64)
        if len(self.codes) and len(at):
            code, found = _key_codes(keys, self.keys)
            rank = np.minimum(_search(self.codes, code, "left"), len(self.codes) - 1)
            found &= self.codes[rank] == code
            target = rank * width + _search(self.times, at, "right")
            order = self.rows.column(_ORDER).to_numpy()
            last = _search(order, target, "right") - 1  # the last row <= (key, T)
            found &= last >= 0
            position = np.maximum(last, 0)
            found &= order[position] // width == rank  # of the same key (else: none by T)
            if self.read.ttl_seconds is not None:
                event = self.times[np.maximum(order[position] % width - 1, 0)]
                found &= event >= at - self.read.ttl_seconds * 1_000_000
        return pa.array(position, mask=~found)

    def save(self, folder: Path) -> None:
        """Write the index as Arrow files in `folder` (read back memory-mapped by `load`)."""
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / "rows.arrow", self.rows)
        _write(folder / "times.arrow", pa.table({"t": self.times}))
        _write(folder / "codes.arrow", pa.table({"c": self.codes}))
        for i, values in enumerate(self.keys):
            _write(folder / f"key{i}.arrow", pa.table({"k": values}))

    @classmethod
    def load(cls, read: ViewRead, folder: Path) -> ViewIndex:
        """The index `save` wrote in `folder`; its rows stay on disk, paged in as needed."""
        keys = tuple(_read(folder / f"key{i}.arrow").column(0).combine_chunks()
                     for i in range(len(read.join_keys)))
        return cls(read, _read(folder / "rows.arrow"),
                   _read(folder / "times.arrow").column(0).to_numpy(),
                   keys, _read(folder / "codes.arrow").column(0).to_numpy())


def _search(sorted_values: np.ndarray, queries: np.ndarray, side: Literal["left", "right"],
            ) -> np.ndarray:
    """`np.searchsorted`, with the queries sorted first when the values outgrow the CPU cache:
    numpy then narrows each search from the previous one, with far fewer cache misses than
    random queries cost (about 4x faster on a million values)."""
    if len(sorted_values) < 1 << 17:
        return np.searchsorted(sorted_values, queries, side=side)
    order = np.argsort(queries)
    found = np.empty(len(queries), np.int64)
    found[order] = np.searchsorted(sorted_values, queries[order], side=side)
    return found


def _write(path: Path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


class AsofJoin:
    """The offline store's `point_in_time_join` over views indexed in memory (`ViewIndex`)."""

    def __init__(self, indexes: Mapping[str, ViewIndex],
                 source_types: Mapping[str, dict[str, str]]) -> None:
        self._indexes = dict(indexes)
        self._types = dict(source_types)

    def describe_source(self, source: FileSource) -> dict[str, str]:
        """Column name to SQL type of a source, as the offline store described it."""
        return self._types[source.path]

    def point_in_time_join(self, entities: pa.Table, views: Sequence[ViewRead], *,
                           filter_by_created_timestamp: bool = False) -> pa.Table:
        """Features for each entity row (`__row`, keys, `__ts`), in `__row` order."""
        if filter_by_created_timestamp:
            raise InvalidInputError("Batch prediction does not filter by created timestamp.",
                                    hint="Use project.features.get_historical_features.")
        at = micros(entities.column(TS))
        columns: dict[str, pa.Array | pa.ChunkedArray] = {ROW: entities.column(ROW)}
        for read in views:
            index = self._indexes[read.name]
            match = index.lookup([entities.column(k) for k in read.join_keys], at)
            for feature in read.features:
                name = read.column(feature.name)
                columns[name] = index.rows.column(name).take(match)
        return pa.table(columns)
