"""The registry's hot reads in plain SQL on the stdlib sqlite3 driver.

Loading a model by alias in a fresh process is one lookup; doing it through SQLAlchemy would
cost more in imports than the rest of the load. These statements read what `queries` reads
(the same tables and columns) from a SQLite file; any other database, and every write, goes
through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from shipyard.models.records import ModelVersion, version_from_row
from shipyard.models.refs import ModelRef

_VERSION = "SELECT * FROM model_versions WHERE project = :project AND name = :name"
BY_VERSION = f"{_VERSION} AND version = :version"
LATEST = f"{_VERSION} AND archived = 0 ORDER BY version DESC LIMIT 1"
BY_ALIAS = (
    "SELECT v.* FROM model_versions AS v JOIN model_aliases AS a ON a.project = v.project "
    "AND a.name = v.name AND a.version = v.version "
    "WHERE v.project = :project AND v.name = :name AND a.alias = :alias")
EXTRAS = " UNION ALL ".join(
    f"SELECT '{kind}' AS kind, name, version, {a} AS a, {b} AS b FROM {table} "
    "WHERE project = :project AND name = :name AND version = :version"
    for kind, table, a, b in (("tags", "model_version_tags", "key", "value"),
                              ("aliases", "model_aliases", "alias", "alias"),
                              ("features", "model_version_features", "view", "feature")))


def find_row(conn: sqlite3.Connection, project: str, ref: ModelRef) -> SimpleNamespace | None:
    """The `model_versions` row `ref` points at, or None."""
    params: dict[str, Any] = {"project": project, "name": ref.name}
    if ref.alias is not None:
        query, params["alias"] = BY_ALIAS, ref.alias
    elif ref.version is not None:
        query, params["version"] = BY_VERSION, ref.version
    else:
        query = LATEST
    row = conn.execute(query, params).fetchone()
    if row is None:
        return None
    values = dict(zip(row.keys(), row, strict=True))
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    return SimpleNamespace(**values)


def find_version(conn: sqlite3.Connection, project: str, ref: ModelRef) -> ModelVersion | None:
    """The full record of the version `ref` points at (tags, aliases, features), or None."""
    row = find_row(conn, project, ref)
    if row is None:
        return None
    extra: dict[str, list[tuple[str, str]]] = {}
    params = {"project": project, "name": row.name, "version": row.version}
    for kind, _name, _version, a, b in conn.execute(EXTRAS, params):
        extra.setdefault(kind, []).append((a, b))
    return version_from_row(row, extra)
