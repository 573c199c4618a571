"""A/B tests and rollouts: experiments (definition, status, decision) and their history.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ab_experiments",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("decision", sa.Text),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("started_at", _TS),
        sa.Column("stopped_at", _TS),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
    )
    op.create_index("ix_ab_experiments_model", "ab_experiments", ["project", "model", "status"])
    op.create_table(
        "ab_experiment_events",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["project", "name"], ["ab_experiments.project", "ab_experiments.name"]),
    )


def downgrade() -> None:
    op.drop_table("ab_experiment_events")
    op.drop_index("ix_ab_experiments_model", "ab_experiments")
    op.drop_table("ab_experiments")
