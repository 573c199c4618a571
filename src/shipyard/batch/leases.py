"""Job leases in the metadata database: one runner per job at a time, each tick run once.

A lease is a row per job holding who runs it and until when. Taking it is one conditional
UPDATE (free or expired, and, for a scheduled tick, a tick later than the last one done),
which SQLite (BEGIN IMMEDIATE) and PostgreSQL (row lock, then the condition re-checked)
both apply atomically: of two schedulers, exactly one sees its UPDATE change the row. A
runner that dies leaves a lease that expires; the tick it was running is then taken again
and, its run id being the tick's, resumed.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from shipyard.core.time import to_utc, utc_now
from shipyard.metadata.db import Database
from shipyard.metadata.tables import job_leases as jl
from shipyard.metadata.upsert import upsert


def default_holder() -> str:
    """`host:pid:random`, unique to this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Lease:
    """A job's lease, held by `holder` until `expires_at` (unless renewed)."""

    job: str
    holder: str
    expires_at: datetime
    due: datetime | None = None  # the scheduled tick it runs, if any


@dataclass(frozen=True)
class LeaseState:
    """What the database says about a job: who holds it, and the last tick done."""

    holder: str | None
    expires_at: datetime | None
    last_due_at: datetime | None


class Leases:
    """The job leases of one project, taken in the name of one holder."""

    def __init__(self, db: Database, project: str, holder: str | None = None) -> None:
        self.db = db
        self.project = project
        self.holder = holder or default_holder()

    def acquire(self, job: str, *, seconds: float, due: datetime | None = None,
                now: datetime | None = None) -> Lease | None:
        """Take the job's lease if it is free or expired (and `due` was not done); else None."""
        now = now or utc_now()
        expires = now + timedelta(seconds=seconds)
        conditions = [*self._match(job), sa.or_(jl.c.holder.is_(None),
                                                 jl.c.lease_expires_at < now)]
        if due is not None:
            conditions.append(sa.or_(jl.c.last_due_at.is_(None), jl.c.last_due_at < due))
        with self.db.write() as conn:
            upsert(conn, jl, [{"project": self.project, "job": job, "updated_at": now}],
                   keys=("project", "job"), update=False)
            taken = conn.execute(jl.update().where(*conditions).values(
                holder=self.holder, lease_expires_at=expires, updated_at=now)).rowcount
        return Lease(job, self.holder, expires, due) if taken == 1 else None

    def renew(self, lease: Lease, *, seconds: float, now: datetime | None = None) -> Lease:
        """Extend a lease we hold."""
        now = now or utc_now()
        expires = now + timedelta(seconds=seconds)
        with self.db.write() as conn:
            conn.execute(jl.update().where(*self._match(lease.job), jl.c.holder == lease.holder)
                         .values(lease_expires_at=expires, updated_at=now))
        return Lease(lease.job, lease.holder, expires, lease.due)

    def release(self, lease: Lease, *, done: bool = False) -> None:
        """Give the lease back; with `done`, its tick counts as run."""
        values: dict[str, object] = {"holder": None, "lease_expires_at": None,
                                     "updated_at": utc_now()}
        if done and lease.due is not None:
            values["last_due_at"] = lease.due
        with self.db.write() as conn:
            conn.execute(jl.update().where(*self._match(lease.job), jl.c.holder == lease.holder)
                         .values(**values))

    def state(self, job: str) -> LeaseState:
        """The job's row (all None if it never ran)."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(jl).where(*self._match(job))).first()
        if row is None:
            return LeaseState(None, None, None)
        return LeaseState(row.holder, _utc(row.lease_expires_at), _utc(row.last_due_at))

    def _match(self, job: str) -> list[sa.ColumnElement[bool]]:
        return [jl.c.project == self.project, jl.c.job == job]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)
