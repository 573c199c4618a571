"""The definitions registry: apply with a plan, a numbered version history, and diffs."""

from __future__ import annotations

import getpass
import json
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from shipyard.core.errors import NotFoundError
from shipyard.core.hashing import canonical_json, spec_hash
from shipyard.core.time import to_utc, utc_now
from shipyard.features.catalog import KINDS, Catalog
from shipyard.metadata.db import Database
from shipyard.metadata.tables import registry_versions as rv

Action = Literal["add", "change", "remove"]
_RETRIES = 5


@dataclass(frozen=True)
class Change:
    """One definition added, changed or removed, with its field-level differences."""

    kind: str
    name: str
    action: Action
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        sign = {"add": "+", "change": "~", "remove": "-"}[self.action]
        kind = {"entities": "entity"}.get(self.kind, self.kind[:-1].replace("_", " "))
        text = f"{sign} {kind} {self.name}"
        return text + "".join(f"\n    {d}" for d in self.details)


@dataclass
class Plan:
    """What an apply changes; `version` is the version the registry is at afterwards."""

    changes: list[Change] = field(default_factory=list)
    version: int | None = None
    applied: bool = False

    @property
    def is_noop(self) -> bool:
        return not self.changes

    def count(self, action: Action) -> int:
        """How many definitions the plan adds, changes or removes."""
        return sum(c.action == action for c in self.changes)

    def __str__(self) -> str:
        if self.is_noop:
            return f"No changes: definitions are at version {self.version}."
        head = (f"{self.count('add')} to add, {self.count('change')} to change, "
                f"{self.count('remove')} to remove")
        return "\n".join([head, *map(str, self.changes)])


@dataclass(frozen=True)
class VersionInfo:
    """One applied version of the definitions."""

    version: int
    created_at: datetime
    definitions_sha256: str
    applied_by: str
    changes: list[dict[str, Any]]


def diff_specs(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The changes that turn catalog spec `old` into `new`, in kind then name order."""
    changes = []
    for kind in KINDS:
        before = {s["name"]: s for s in old.get(kind, [])}
        after = {s["name"]: s for s in new.get(kind, [])}
        for name in sorted(before.keys() | after.keys()):
            if name not in before:
                changes.append(Change(kind, name, "add"))
            elif name not in after:
                changes.append(Change(kind, name, "remove"))
            elif canonical_json(before[name]) != canonical_json(after[name]):
                changes.append(Change(kind, name, "change",
                                      tuple(_field_diff(before[name], after[name]))))
    return changes


def _field_diff(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(old.keys() | new.keys()):
            out += _field_diff(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    if canonical_json(old) == canonical_json(new):
        return []
    if isinstance(old, str) and isinstance(new, str) and "\n" in old + new:
        return [f"{path}: changed"]  # function source: the hash beside it shows the change
    return [f"{path}: {canonical_json(old)} -> {canonical_json(new)}"]


def _who() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return "unknown"


class Registry:
    """Applied definitions of one project, stored as numbered versions in the metadata DB."""

    def __init__(self, db: Database, project: str) -> None:
        self.db = db
        self.project = project

    def _latest(self, conn: sa.Connection) -> sa.Row[Any] | None:
        query = (sa.select(rv).where(rv.c.project == self.project)
                 .order_by(rv.c.version.desc()).limit(1))
        return conn.execute(query).first()

    def plan(self, catalog: Catalog) -> Plan:
        """What applying `catalog` would change, without storing anything."""
        with self.db.read() as conn:
            latest = self._latest(conn)
        return self._plan(latest, catalog.to_spec())

    @staticmethod
    def _plan(latest: sa.Row[Any] | None, spec: dict[str, Any]) -> Plan:
        old = json.loads(latest.spec) if latest else {}
        return Plan(diff_specs(old, spec), latest.version if latest else None)

    def apply(self, catalog: Catalog) -> Plan:
        """Store `catalog` as a new version unless it equals the latest; return the plan."""
        spec = catalog.to_spec()
        digest = spec_hash(spec)
        for attempt in range(_RETRIES):
            try:
                with self.db.write() as conn:
                    latest = self._latest(conn)
                    plan = self._plan(latest, spec)
                    if latest is not None and latest.definitions_sha256 == digest:
                        return plan
                    plan.version = (latest.version if latest else 0) + 1
                    conn.execute(rv.insert().values(
                        project=self.project, version=plan.version, created_at=utc_now(),
                        definitions_sha256=digest, spec=canonical_json(spec),
                        changes=json.dumps([c.__dict__ for c in plan.changes]),
                        applied_by=_who()))
                    plan.applied = True
                    return plan
            except sa.exc.IntegrityError:  # another process took this number: plan again
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def current(self) -> tuple[int, Catalog] | None:
        """The latest applied version and its catalog, or None before the first apply."""
        with self.db.read() as conn:
            latest = self._latest(conn)
        return None if latest is None else (latest.version, Catalog.from_spec(
            json.loads(latest.spec)))

    def latest_version(self) -> int | None:
        """The latest applied version number, without loading its spec (None: none yet)."""
        query = sa.select(sa.func.max(rv.c.version)).where(rv.c.project == self.project)
        with self.db.read() as conn:
            return conn.execute(query).scalar()

    def list_versions(self) -> list[VersionInfo]:
        """Every applied version, oldest first."""
        query = sa.select(rv).where(rv.c.project == self.project).order_by(rv.c.version)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [VersionInfo(r.version, to_utc(r.created_at), r.definitions_sha256, r.applied_by,
                            json.loads(r.changes)) for r in rows]

    def get_spec(self, version: int) -> dict[str, Any]:
        """The catalog spec stored as `version`."""
        query = sa.select(rv.c.spec).where(rv.c.project == self.project, rv.c.version == version)
        with self.db.read() as conn:
            spec = conn.execute(query).scalar()
        if spec is None:
            known = [v.version for v in self.list_versions()]
            raise NotFoundError(f"Definitions version {version} does not exist.",
                                hint=f"Known versions: {known}. See `shipyard versions list`.")
        return json.loads(spec)

    def diff(self, old: int, new: int) -> list[Change]:
        """The changes between two stored versions."""
        return diff_specs(self.get_spec(old), self.get_spec(new))
