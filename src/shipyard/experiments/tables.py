"""The experiment tables of the metadata database (migration 0006 creates them)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
_TS = sa.DateTime(timezone=True)

ab_experiments = sa.Table(
    "ab_experiments",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),  # ab | canary | shadow
    sa.Column("status", sa.String(20), nullable=False),  # see spec.STATUSES
    sa.Column("spec", sa.Text, nullable=False),  # JSON: variants, weights, unit, metrics, ...
    sa.Column("decision", sa.Text),  # JSON: the concluded decision and its evidence
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("started_at", _TS),
    sa.Column("stopped_at", _TS),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
)

ab_experiment_events = sa.Table(  # the full history: every change, with its details
    "ab_experiment_events",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("at", _TS, nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON
    sa.Column("actor", sa.String(200), nullable=False, server_default=""),
)
