"""Connections to the metadata database, migrated to the newest schema on first use."""

from __future__ import annotations

import fcntl
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shipyard.core.errors import BackendUnavailable, ConfigError

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 7_141_592_653  # pg_advisory_lock key that serialises migrations
_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)


def normalize_url(url: str) -> str:
    """Use psycopg 3 for `postgresql://` URLs; other URLs pass through."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    """An engine on the metadata database, with read and write transactions.

    On SQLite a write transaction starts with BEGIN IMMEDIATE, so two processes that
    read-then-write serialise instead of failing halfway; WAL lets readers go on meanwhile.
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        try:
            self.engine = sa.create_engine(self.url, **self._engine_options())
        except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
            raise ConfigError(f"Cannot use metadata URL {url!r}: {exc}",
                              hint="Use sqlite:///path.db or postgresql://user@host:5432/db "
                                   "(pip install 'shipyard[postgres]').") from exc
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            self._sqlite_events()
        self._migrated = False
        self._migrate_lock = threading.Lock()

    def _engine_options(self) -> dict[str, object]:
        if self.url.startswith("sqlite"):
            return {"connect_args": {"timeout": 60, "check_same_thread": False}}
        return {"pool_pre_ping": True}

    def _sqlite_events(self) -> None:
        @sa.event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(self.engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            immediate = conn.info.pop("shipyard_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

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

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
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
        revisions, parents = set(), set()
        for path in (_MIGRATIONS / "versions").glob("*.py"):
            text = path.read_text()
            revisions.update(_REVISION.findall(text))
            parents.update(_DOWN_REVISION.findall(text))
        try:
            with self._connect() as conn:
                current = set(conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                              .scalars())
        except sa.exc.DBAPIError:  # no table yet, or another problem: let Alembic decide
            return False
        return bool(current) and current == revisions - parents

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
        """Close pooled connections."""
        self.engine.dispose()
