"""The embedded online store: one SQLite table in WAL mode, keyed by (project, view, key)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path

from shipyard.core.errors import BackendUnavailable
from shipyard.features.online import OnlineRow, StoredRow, encoded, from_micros
from shipyard.features.online._codec import unpack

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_rows (
    project TEXT NOT NULL, view TEXT NOT NULL, entity_key BLOB NOT NULL,
    event_us INTEGER NOT NULL, created_us INTEGER NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (project, view, entity_key)
) WITHOUT ROWID
"""
# The newest event time written to each view: one row per (project, view), raised (never
# lowered) by every write in the same transaction as its rows.
_NEWEST_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_newest (
    project TEXT NOT NULL, view TEXT NOT NULL, event_us INTEGER NOT NULL,
    PRIMARY KEY (project, view)
) WITHOUT ROWID
"""
_RAISE_NEWEST = """
INSERT INTO online_newest (project, view, event_us) VALUES (?, ?, ?)
ON CONFLICT (project, view) DO UPDATE SET event_us = MAX(online_newest.event_us, excluded.event_us)
"""
# Newer wins, decided by SQLite inside the statement: an older row leaves the stored one as is;
# an equal (event, created) pair overwrites, so a rerun or a re-push is idempotent.
_UPSERT = """
INSERT INTO online_rows (project, view, entity_key, event_us, created_us, payload)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (project, view, entity_key) DO UPDATE SET
    event_us = excluded.event_us, created_us = excluded.created_us, payload = excluded.payload
WHERE (excluded.event_us, excluded.created_us) >= (online_rows.event_us, online_rows.created_us)
"""
_ROWS_PER_UPSERT = 64  # rows per multi-row upsert: a third less work per row in SQLite's VM
_UPSERT_MANY = _UPSERT.replace("VALUES (?, ?, ?, ?, ?, ?)",
                               "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * _ROWS_PER_UPSERT))
_READ_ONE = ("SELECT entity_key, event_us, payload FROM online_rows "
             "WHERE project = ? AND view = ? AND entity_key = ?")
_READ_MANY = ("SELECT entity_key, event_us, payload FROM online_rows "
              "WHERE project = ? AND view = ? AND entity_key IN ({})")
_MAX_PARAMS = 500  # keys per IN (...) statement; SQLite's limit is far higher


class SqliteOnlineStore:
    """Online rows in a SQLite file; one connection per thread, prepared statements cached."""

    def __init__(self, path: str | Path, *, project: str) -> None:
        self.path = Path(path)
        self.project = project
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   cached_statements=512, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # big writes touch many B-tree pages: a 32 MB page cache and memory-mapped reads
            # double the upsert rate of a million-key table over the 2 MB default
            conn.execute("PRAGMA cache_size=-32768")
            conn.execute("PRAGMA mmap_size=268435456")
            conn.execute(_SCHEMA)
            conn.execute(_NEWEST_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise self._unavailable(exc) from exc
        with self._lock:
            self._connections.append(conn)
        return conn

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        return BackendUnavailable(f"The SQLite online store {str(self.path)!r} failed: {exc}",
                                  hint="Check that its folder is writable and the disk not full "
                                       "(online_store.path in shipyard.yaml).")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Store rows unless the store holds a newer one for the key; return how many were."""
        if not rows:
            return 0
        batch = encoded(rows).latest()
        # In key order, the upserts walk the primary-key B-tree once instead of jumping
        # around it (3x faster on large writes); the sort is stable: repeats stay in order.
        params = sorted(zip(repeat(self.project), repeat(view), batch.keys, batch.event_us,
                            batch.created_us, batch.payloads, strict=False), key=itemgetter(2))
        conn = self._conn()
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = _upsert(conn, params)
                conn.execute(_RAISE_NEWEST, (self.project, view, max(batch.event_us)))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return changed

    def read(self, view: str, keys: Sequence[bytes]) -> list[StoredRow | None]:
        """The stored row of each key (None: unknown key), in one query per 500 keys."""
        conn = self._conn()
        with self._errors():
            if len(keys) == 1:
                row = conn.execute(_READ_ONE, (self.project, view, keys[0])).fetchone()
                return [None if row is None else StoredRow(row[1], unpack(row[2]))]
            found: dict[bytes, StoredRow] = {}
            for i in range(0, len(keys), _MAX_PARAMS):
                chunk = keys[i:i + _MAX_PARAMS]
                sql = _READ_MANY.format(", ".join("?" * len(chunk)))
                for key, event_us, payload in conn.execute(sql, (self.project, view, *chunk)):
                    found[key] = StoredRow(event_us, unpack(payload))
        return [found.get(key) for key in keys]

    def drop(self, view: str) -> None:
        """Delete every row of a view and its newest event time, in one transaction."""
        conn = self._conn()
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in ("online_rows", "online_newest"):
                    conn.execute(f"DELETE FROM {table} WHERE project = ? AND view = ?",
                                 (self.project, view))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def newest_event_times(self) -> dict[str, datetime]:
        """The newest event time written to each view (absent: never written), in one query."""
        if getattr(self._local, "conn", None) is None and not self.path.exists():
            return {}  # nothing written yet: do not create the file just to say so
        with self._errors():
            rows = self._conn().execute(
                "SELECT view, event_us FROM online_newest WHERE project = ?", (self.project,))
            return {view: from_micros(event_us) for view, event_us in rows}

    def ping(self) -> None:
        """Return when the database file answers; raise BackendUnavailable otherwise."""
        with self._errors():
            self._conn().execute("SELECT 1").fetchone()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            conn.close()


def _upsert(conn: sqlite3.Connection, params: list[tuple[object, ...]]) -> int:
    """Run the upsert over rows (keys unique), _ROWS_PER_UPSERT rows per statement."""
    whole = len(params) - len(params) % _ROWS_PER_UPSERT
    width = 6 * _ROWS_PER_UPSERT
    flat = list(chain.from_iterable(params[:whole]))
    changed = conn.executemany(_UPSERT_MANY, [flat[i:i + width] for i in
                                              range(0, len(flat), width)]).rowcount if whole else 0
    if whole < len(params):
        changed += conn.executemany(_UPSERT, params[whole:]).rowcount
    return changed
