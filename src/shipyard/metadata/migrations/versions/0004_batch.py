"""The batch layer: runs of batch jobs (linked to the model version they used), job leases.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batch_runs",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("job", sa.String(200)),
        sa.Column("model_name", sa.String(200)),
        sa.Column("model_version", sa.Integer),
        sa.Column("engine", sa.String(20), nullable=False),
        sa.Column("input", sa.Text, nullable=False, server_default=""),
        sa.Column("output", sa.Text, nullable=False, server_default=""),
        sa.Column("features_at", sa.String(40), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("row_count", sa.BigInteger),
        sa.Column("partitions", sa.Integer),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("error", sa.Text),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["project", "model_name", "model_version"],
                                ["model_versions.project", "model_versions.name",
                                 "model_versions.version"]),
    )
    op.create_index("ix_batch_runs_project_started", "batch_runs", ["project", "started_at"])
    op.create_index("ix_batch_runs_model", "batch_runs", ["project", "model_name", "model_version"])
    op.create_table(
        "job_leases",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("job", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200)),
        sa.Column("lease_expires_at", _TS),
        sa.Column("last_due_at", _TS),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_index("ix_batch_runs_model", "batch_runs")
    op.drop_index("ix_batch_runs_project_started", "batch_runs")
    op.drop_table("batch_runs")
