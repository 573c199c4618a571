"""Tables of the monitoring layer (migration 0005 creates them)."""

from __future__ import annotations

import sqlalchemy as sa

# Kept apart from shipyard.metadata.tables so that this layer's schema lives with its code;
# the migration is the one source of truth for both.
metadata = sa.MetaData()
_TS = sa.DateTime(timezone=True)

profiles = sa.Table(  # one row per (model, reference, window): a mergeable Profile as JSON
    "monitoring_profiles",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("reference_id", sa.String(64), primary_key=True),
    sa.Column("window_start", _TS, primary_key=True),
    sa.Column("window_seconds", sa.Integer, primary_key=True),
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("profile", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
)

alert_states = sa.Table(  # the last verdict per rule and column: how alerts de-duplicate
    "monitoring_alert_states",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("rule", sa.String(200), primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("column", sa.String(200), primary_key=True),
    sa.Column("is_firing", sa.Boolean, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("since", _TS, nullable=False),
    sa.Column("evaluated_at", _TS, nullable=False),
)

alert_events = sa.Table(  # fired and resolved transitions, never one per evaluation
    "monitoring_alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("column", sa.String(200), nullable=False),
    sa.Column("metric", sa.String(50), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # fired | resolved
    sa.Column("value", sa.Float),
    sa.Column("threshold", sa.Float),
    sa.Column("window_start", _TS, nullable=False),
    sa.Column("window_end", _TS, nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("webhook_status", sa.String(200)),  # "200", "error: ...", or null (no webhook)
    sa.Index("ix_monitoring_alert_events_project_at", "project", "at"),
)
