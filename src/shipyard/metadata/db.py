"""Connections to the metadata database, migrated to the newest schema on first use.

SQLAlchemy and Alembic are imported on first use: a process that only reads a model version
from a SQLite file (`project.models.load`) does so through the standard library's sqlite3.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import BackendUnavailable, ConfigError

if TYPE_CHECKING:
    import sqlalchemy as sa

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 7_141_592_653  # pg_advisory_lock key that serialises migrations
_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_SQLITE_FILE = re.compile(r"^sqlite(\+pysqlite)?:///(?P<path>[^?]+)$")
_BUSY_TIMEOUT_MS = 60_000


def normalize_url(url: str) -> str:
    """Use psycopg 3 for `postgresql://` URLs; other URLs pass through."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def head_revisions() -> set[str]:
    """The newest migration revision(s), read from the migration files (no Alembic import)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text()
        revisions.update(_REVISION.findall(text))
        parents.update(_DOWN_REVISION.findall(text))
    return revisions - parents


class Database:
    """An engine on the metadata database, with read and write transactions.

    On SQLite a write transaction starts with BEGIN IMMEDIATE, so two processes that
    read-then-write serialise instead of failing halfway; WAL lets readers go on meanwhile.
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        match = _SQLITE_FILE.match(self.url)
        self.sqlite_path = match["path"] if match and match["path"] != ":memory:" else None
        self.is_sqlite = self.url.startswith("sqlite")
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._local = threading.local()  # this thread's sqlite3 connection (sqlite_read)
        if self.sqlite_path is None:
            self.__dict__["engine"] = self._create_engine(url)  # check the URL now

    @cached_property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (created on first use for a SQLite file)."""
        return self._create_engine(self.url)

    def _create_engine(self, url: str) -> sa.Engine:
        import sqlalchemy as sa

        try:
            engine = sa.create_engine(self.url, **self._engine_options())
        except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
            raise ConfigError(f"Cannot use metadata URL {url!r}: {exc}",
                              hint="Use sqlite:///path.db or postgresql://user@host:5432/db "
                                   "(pip install 'shipyard[postgres]').") from exc
        self.is_sqlite = engine.dialect.name == "sqlite"
        if self.is_sqlite:
            _sqlite_events(engine)
        return engine

    def _engine_options(self) -> dict[str, object]:
        if self.url.startswith("sqlite"):
            return {"connect_args": {"timeout": 60, "check_same_thread": False}}
        return {"pool_pre_ping": True}

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only transaction."""
        self.migrate()
        with self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        self.migrate()
        with self._connect() as conn:
            conn.info["shipyard_write"] = True
            with conn.begin():
                yield conn

    def lock(self, conn: sa.Connection, *key: str) -> None:
        """Hold a lock on `key` until `conn`'s write transaction ends, so read-check-write
        blocks on that key run one at a time across processes (pg_advisory_xact_lock on
        PostgreSQL; on SQLite the write transaction's BEGIN IMMEDIATE serialises already)."""
        if conn.dialect.name != "postgresql":
            return
        import sqlalchemy as sa

        digest = hashlib.blake2b("\x00".join(key).encode(), digest_size=8).digest()
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                     {"k": int.from_bytes(digest, "big", signed=True)})

    @contextmanager
    def sqlite_read(self) -> Iterator[sqlite3.Connection | None]:
        """A read transaction on the stdlib sqlite3 driver, for hot read paths that should
        not import SQLAlchemy; None when the database is not a SQLite file (use `read`)."""
        if self.sqlite_path is None:
            yield None
            return
        conn = self._sqlite_connection()
        if not self._migrated and not self._raw_is_at_head(conn):
            self.migrate()  # an older schema: let Alembic bring it up to date
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()  # nothing was written; this ends the read snapshot

    def _sqlite_connection(self) -> sqlite3.Connection:
        cached = getattr(self._local, "conn", None)
        if cached is not None and cached[0] == os.getpid():
            return cached[1]
        try:
            conn = sqlite3.connect(self.sqlite_path or "", timeout=_BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"Cannot open the metadata database {self.sqlite_path}: "
                                     f"{exc}", hint="Fix `metadata` in shipyard.yaml.") from exc
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        self._local.conn = (os.getpid(), conn)
        return conn

    def _raw_is_at_head(self, conn: sqlite3.Connection) -> bool:
        try:
            current = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
        except sqlite3.DatabaseError:  # no table yet: the full migration creates it
            return False
        if current and current == head_revisions():
            self._migrated = True
        return self._migrated

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        import sqlalchemy as sa

        try:
            conn = self.engine.connect()
        except sa.exc.OperationalError as exc:
            raise BackendUnavailable(
                f"Cannot connect to the metadata database at {self.safe_url}: {exc.orig}",
                hint="Start the database server or fix `metadata` in shipyard.yaml.",
            ) from exc
        with conn:
            yield conn

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema to the newest migration, once per process, under a lock."""
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            if self._is_at_head():  # the usual case, answered without importing Alembic
                self._migrated = True
                return
            from alembic.runtime.migration import MigrationContext  # lazy: ~0.3 s of imports
            from alembic.script import ScriptDirectory

            head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
            with self._connect() as conn:
                if MigrationContext.configure(conn).get_current_revision() != head:
                    with self._cross_process_lock(conn):
                        self._upgrade(conn)
            self._migrated = True

    def _is_at_head(self) -> bool:
        """Whether the database is at the newest migration file's revision (one query)."""
        import sqlalchemy as sa

        try:
            with self._connect() as conn:
                current = set(conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                              .scalars())
        except sa.exc.DBAPIError:  # no table yet, or another problem: let Alembic decide
            return False
        return bool(current) and current == head_revisions()

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        return cfg

    def _upgrade(self, conn: sa.Connection) -> None:
        from alembic import command

        cfg = self._alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        if conn.in_transaction():
            conn.commit()

    @contextmanager
    def _cross_process_lock(self, conn: sa.Connection) -> Iterator[None]:
        import sqlalchemy as sa

        if not self.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def dispose(self) -> None:
        """Close pooled connections (and this thread's sqlite3 connection)."""
        cached = getattr(self._local, "conn", None)
        if cached is not None:
            self._local.conn = None
            if cached[0] == os.getpid():
                cached[1].close()
        if "engine" in self.__dict__:
            self.engine.dispose()


def _sqlite_events(engine: sa.Engine) -> None:
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        immediate = conn.info.pop("shipyard_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
