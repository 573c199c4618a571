"""The monitoring layer: stored window profiles, alert states (for de-duplication), alert events.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitoring_profiles",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("reference_id", sa.String(64), primary_key=True),
        sa.Column("window_start", _TS, primary_key=True),
        sa.Column("window_seconds", sa.Integer, primary_key=True),
        sa.Column("n_rows", sa.BigInteger, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "monitoring_alert_states",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("rule", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("column", sa.String(200), primary_key=True),
        sa.Column("is_firing", sa.Boolean, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("since", _TS, nullable=False),
        sa.Column("evaluated_at", _TS, nullable=False),
    )
    op.create_table(
        "monitoring_alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("column", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("window_end", _TS, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("webhook_status", sa.String(200)),
    )
    op.create_index("ix_monitoring_alert_events_project_at", "monitoring_alert_events",
                    ["project", "at"])


def downgrade() -> None:
    op.drop_index("ix_monitoring_alert_events_project_at", "monitoring_alert_events")
    op.drop_table("monitoring_alert_events")
    op.drop_table("monitoring_alert_states")
    op.drop_table("monitoring_profiles")
