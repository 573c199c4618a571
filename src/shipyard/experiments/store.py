"""Experiments in the metadata database: definitions, status changes and their history.

Every change is one write transaction that updates the experiment's row and appends an
event (what changed, by whom, with the details), so `history(name)` is complete. Changes of
one project take turns (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), so two
experiments cannot both start on one model.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from shipyard.core.environment import who
from shipyard.core.errors import ConflictError, NotFoundError
from shipyard.core.time import utc_now
from shipyard.experiments.spec import Experiment, check_name, from_row
from shipyard.experiments.tables import ab_experiment_events as ev
from shipyard.experiments.tables import ab_experiments as ex
from shipyard.metadata.db import Database

# which statuses each change may start from
_FROM = {"start": ("draft", "paused"), "pause": ("running",),
         "stop": ("running", "paused", "draft"), "rollback": ("running", "paused"),
         "conclude": ("running", "paused", "stopped", "rolled_back")}
_TO = {"start": "running", "pause": "paused", "stop": "stopped", "rollback": "rolled_back",
       "conclude": "concluded"}


class ExperimentStore:
    """The experiments of one project."""

    def __init__(self, db: Database, project: str) -> None:
        self.db = db
        self.project = project

    def insert(self, experiment: Experiment) -> Experiment:
        """Store a new experiment (ConflictError if the name is taken)."""
        now = utc_now()
        with self.db.write() as conn:
            self._lock(conn)
            if conn.execute(sa.select(ex.c.name).where(*self._key(experiment.name))).first():
                raise ConflictError(f"Experiment {experiment.name!r} exists already.",
                                    hint="Pick another name; `shipyard experiment list` shows "
                                         "the names in use.")
            conn.execute(ex.insert().values(
                project=self.project, name=experiment.name, model=experiment.model,
                mode=experiment.mode, status="draft", spec=json.dumps(experiment.spec()),
                created_at=now, updated_at=now, created_by=who()))
            self._event(conn, experiment.name, "created", experiment.describe() | {
                "created_at": now.isoformat(), "updated_at": now.isoformat()})
        return self.get(experiment.name)

    def get(self, name: str) -> Experiment:
        """The experiment called `name`; NotFoundError otherwise."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(ex).where(*self._key(name))).first()
        if row is None:
            raise NotFoundError(f"No experiment {name!r} in project {self.project!r}.",
                                hint="`shipyard experiment list` shows them; create one with "
                                     "`shipyard experiment create`.")
        return from_row(row)

    def list(self, *, model: str | None = None, status: str | None = None) -> list[Experiment]:
        """Experiments, newest first, optionally of one model or in one status."""
        query = sa.select(ex).where(ex.c.project == self.project)
        if model is not None:
            query = query.where(ex.c.model == model)
        if status is not None:
            query = query.where(ex.c.status == status)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(ex.c.created_at.desc(), ex.c.name)).all()
        return [from_row(r) for r in rows]

    def running_for(self, model: str) -> Experiment | None:
        """The running experiment of `model`, if any (one indexed query: servers poll it)."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(ex).where(
                ex.c.project == self.project, ex.c.model == model, ex.c.status == "running")
                .order_by(ex.c.updated_at.desc())).first()
        return None if row is None else from_row(row)

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every change of the experiment, oldest first: seq, at, event, actor, detail."""
        self.get(name)
        with self.db.read() as conn:
            rows = conn.execute(sa.select(ev).where(ev.c.project == self.project,
                                                    ev.c.name == name).order_by(ev.c.seq)).all()
        return [{"seq": r.seq, "at": r.at.isoformat(), "event": r.event, "actor": r.actor,
                 "detail": json.loads(r.detail)} for r in rows]

    def change(self, name: str, action: str, detail: dict[str, Any] | None = None, *,
               decision: dict[str, Any] | None = None) -> Experiment:
        """Move the experiment to the status of `action` (start, pause, stop, rollback,
        conclude), recording the event; ConflictError when the move is not allowed."""
        now = utc_now()
        with self.db.write() as conn:
            self._lock(conn)  # "one running experiment per model" is checked, then written
            row = conn.execute(sa.select(ex).where(*self._key(name))).first()
            if row is None:
                raise NotFoundError(f"No experiment {name!r} in project {self.project!r}.",
                                    hint="`shipyard experiment list` shows them.")
            if action == "rollback" and row.status == "rolled_back":
                return from_row(row)  # several servers may see the same breach
            if row.status not in _FROM[action]:
                raise ConflictError(f"Experiment {name!r} is {row.status}; it cannot {action}.",
                                    hint=f"It can {action} from: {', '.join(_FROM[action])}.")
            if action == "start":
                other = conn.execute(sa.select(ex.c.name).where(
                    ex.c.project == self.project, ex.c.model == row.model, ex.c.name != name,
                    ex.c.status.in_(("running", "paused")))).first()
                if other is not None:
                    raise ConflictError(f"Experiment {other.name!r} is already running on model "
                                        f"{row.model!r}; a server routes one at a time.",
                                        hint=f"Stop or conclude {other.name!r} first.")
            values: dict[str, Any] = {"status": _TO[action], "updated_at": now}
            if action == "start" and row.started_at is None:
                values["started_at"] = now
            if action in ("stop", "rollback", "conclude") and row.stopped_at is None:
                values["stopped_at"] = now
            if decision is not None:
                values["decision"] = json.dumps(decision, default=str)
            conn.execute(ex.update().where(*self._key(name)).values(**values))
            self._event(conn, name, action, {"from": row.status, "to": _TO[action],
                                             **(detail or {})})
        return self.get(name)

    def _lock(self, conn: sa.Connection) -> None:
        """Serialise the project's experiment changes until `conn`'s transaction ends."""
        self.db.lock(conn, "experiments", self.project)

    def _key(self, name: str) -> tuple[sa.ColumnElement[bool], ...]:
        return ex.c.project == self.project, ex.c.name == check_name(name)

    def _event(self, conn: sa.Connection, name: str, event: str, detail: dict[str, Any]) -> None:
        seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(ev.c.seq), 0)).where(
            ev.c.project == self.project, ev.c.name == name)).scalar_one() + 1
        conn.execute(ev.insert().values(project=self.project, name=name, seq=seq, at=utc_now(),
                                        event=event, detail=json.dumps(detail, default=str),
                                        actor=who()))
