"""Monitoring rows in the metadata store: window profiles, alert states and alert events."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from shipyard.core.time import to_utc, utc_now
from shipyard.metadata.db import Database
from shipyard.metadata.upsert import upsert
from shipyard.monitoring.tables import alert_events, alert_states, profiles


@dataclass(frozen=True)
class AlertEvent:
    """A rule's condition started (`fired`) or stopped (`resolved`) holding."""

    id: int
    rule: str
    model: str
    column: str
    metric: str
    severity: str
    status: str
    value: float | None
    threshold: float | None
    window_start: datetime
    window_end: datetime
    at: datetime
    message: str
    webhook_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the webhook body)."""
        return {"id": self.id, "rule": self.rule, "model": self.model, "column": self.column,
                "metric": self.metric, "severity": self.severity, "status": self.status,
                "value": self.value, "threshold": self.threshold,
                "window_start": self.window_start.isoformat(),
                "window_end": self.window_end.isoformat(), "at": self.at.isoformat(),
                "message": self.message}


@dataclass(frozen=True)
class AlertState:
    """Whether a rule's condition held for a column at its last evaluation, and since when."""

    rule: str
    model: str
    column: str
    is_firing: bool
    value: float | None
    since: datetime


class MonitoringStore:
    """Profiles and alerts of one project in the metadata database."""

    def __init__(self, db: Database, project: str) -> None:
        self.db = db
        self.project = project

    # -- profiles --------------------------------------------------------------------------

    def write_profiles(self, model: str, reference_id: str, window_seconds: int,
                       items: dict[datetime, dict[str, Any]]) -> None:
        """Store window profiles (``Profile.to_dict()`` form) by start, replacing older ones."""
        now = utc_now()
        rows = [{"project": self.project, "model": model, "reference_id": reference_id,
                 "window_start": to_utc(start), "window_seconds": window_seconds,
                 "n_rows": int(data["n_rows"]), "profile": json.dumps(data),
                 "created_at": now} for start, data in items.items()]
        with self.db.write() as conn:
            upsert(conn, profiles, rows, keys=("project", "model", "reference_id",
                                               "window_start", "window_seconds"))

    def read_profiles(self, model: str, reference_id: str, window_seconds: int, start: datetime,
                      end: datetime) -> dict[datetime, dict[str, Any]]:
        """Stored profiles (dicts) of windows starting in [start, end), by start."""
        query = sa.select(profiles.c.window_start, profiles.c.profile).where(
            profiles.c.project == self.project, profiles.c.model == model,
            profiles.c.reference_id == reference_id, profiles.c.window_seconds == window_seconds,
            profiles.c.window_start >= to_utc(start), profiles.c.window_start < to_utc(end))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return {to_utc(r.window_start): json.loads(r.profile) for r in rows}

    # -- alerts ----------------------------------------------------------------------------

    def read_states(self) -> dict[tuple[str, str, str], AlertState]:
        """The last verdict of every (rule, model, column)."""
        with self.db.read() as conn:
            return self._read_states(conn)

    def _read_states(self, conn: sa.Connection) -> dict[tuple[str, str, str], AlertState]:
        rows = conn.execute(sa.select(alert_states).where(
            alert_states.c.project == self.project)).all()
        return {(r.rule, r.model, r.column): AlertState(r.rule, r.model, r.column,
                                                        bool(r.is_firing), r.value,
                                                        to_utc(r.since)) for r in rows}

    def write_states(self, states: list[AlertState], evaluated_at: datetime) -> None:
        """Store the verdicts of one evaluation."""
        with self.db.write() as conn:
            self._write_states(conn, states, evaluated_at)

    def _write_states(self, conn: sa.Connection, states: list[AlertState],
                      evaluated_at: datetime) -> None:
        rows = [{"project": self.project, "rule": s.rule, "model": s.model, "column": s.column,
                 "is_firing": s.is_firing, "value": _finite(s.value), "since": s.since,
                 "evaluated_at": evaluated_at} for s in states]
        if rows:
            upsert(conn, alert_states, rows, keys=("project", "rule", "model", "column"))

    def add_event(self, event: dict[str, Any]) -> AlertEvent:
        """Store one alert event; returns it with its id."""
        with self.db.write() as conn:
            return self._add_event(conn, event)

    def _add_event(self, conn: sa.Connection, event: dict[str, Any]) -> AlertEvent:
        row = {**event, "project": self.project, "value": _finite(event.get("value")),
               "threshold": _finite(event.get("threshold"))}
        result = conn.execute(sa.insert(alert_events).values(row))
        return _event({**row, "id": int(result.inserted_primary_key[0])})

    def update_alerts(self, decide: Callable[[dict[tuple[str, str, str], AlertState]],
                                             tuple[list[AlertState], list[dict[str, Any]]]],
                      evaluated_at: datetime) -> list[AlertEvent]:
        """In one write transaction that concurrent callers take in turn: read the states,
        let `decide` turn them into new states and events, and store both; returns the events."""
        with self.db.write() as conn:
            self.db.lock(conn, "alerts", self.project)
            states, changes = decide(self._read_states(conn))
            events = [self._add_event(conn, change) for change in changes]
            self._write_states(conn, states, evaluated_at)
        return events

    def set_webhook_status(self, event_id: int, status: str) -> None:
        """Record how the webhook answered for an event."""
        with self.db.write() as conn:
            conn.execute(sa.update(alert_events).where(alert_events.c.id == event_id)
                         .values(webhook_status=status[:200]))

    def list_events(self, *, model: str | None = None, start: datetime | None = None,
                    end: datetime | None = None, since: timedelta | None = None) -> list[AlertEvent]:
        """Alert events, oldest first; filter by model and by time."""
        where = [alert_events.c.project == self.project]
        if model is not None:
            where.append(alert_events.c.model == model)
        if since is not None:
            start = utc_now() - since
        if start is not None:
            where.append(alert_events.c.at >= to_utc(start))
        if end is not None:
            where.append(alert_events.c.at < to_utc(end))
        query = sa.select(alert_events).where(*where).order_by(alert_events.c.id)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [_event(r._asdict()) for r in rows]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _event(row: dict[str, Any]) -> AlertEvent:
    return AlertEvent(
        id=int(row["id"]), rule=row["rule"], model=row["model"], column=row["column"],
        metric=row["metric"], severity=row["severity"], status=row["status"],
        value=row.get("value"), threshold=row.get("threshold"),
        window_start=to_utc(row["window_start"]), window_end=to_utc(row["window_end"]),
        at=to_utc(row["at"]), message=row.get("message") or "",
        webhook_status=row.get("webhook_status"))
