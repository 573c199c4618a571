"""Insert-or-update and insert-if-absent statements for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]], *,
           keys: Sequence[str], update: bool = True) -> None:
    """Insert `rows`; a row whose `keys` exist already is updated (or kept, if not `update`)."""
    if not rows:
        return
    stmt = _INSERTS[conn.dialect.name](table).values(list(rows))
    if update:
        changed = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=changed)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt)
