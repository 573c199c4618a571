"""The training layer: experiments, runs and their records, datasets, the model registry.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_VERSION_FK = (["project", "name", "version"],
               ["model_versions.project", "model_versions.name", "model_versions.version"])


def _run_fk() -> sa.Column:
    return sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                     primary_key=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time", _TS, nullable=False),
        sa.Column("end_time", _TS),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["project", "experiment"],
                                ["experiments.project", "experiments.name"]),
    )
    op.create_index("ix_runs_project_experiment", "runs", ["project", "experiment", "start_time"])
    op.create_table(
        "run_params", _run_fk(),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "run_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
    )
    op.create_index("ix_run_metrics_run_key", "run_metrics", ["run_id", "key"])
    op.create_table(
        "run_tags", _run_fk(),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "run_artifacts", _run_fk(),
        sa.Column("name", sa.String(500), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_datasets_project_created", "datasets", ["project", "created_at"])
    op.create_table(
        "models",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("flavor", sa.String(50), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_size", sa.BigInteger, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("has_onnx", sa.Boolean, nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("dataset_id", sa.String(64)),
        sa.Column("feature_service", sa.String(200)),
        sa.Column("definitions_version", sa.Integer),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["project", "name"], ["models.project", "models.name"]),
    )
    op.create_table(
        "model_version_tags",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(*_VERSION_FK),
    )
    op.create_table(
        "model_aliases",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(*_VERSION_FK),
    )
    op.create_table(
        "model_version_features",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("view", sa.String(200), primary_key=True),
        sa.Column("feature", sa.String(200), primary_key=True),
        sa.ForeignKeyConstraint(*_VERSION_FK),
    )
    op.create_index("ix_model_version_features_view", "model_version_features",
                    ["project", "view"])


def downgrade() -> None:
    for table in ("model_version_features", "model_aliases", "model_version_tags",
                  "model_versions", "models", "datasets", "run_artifacts", "run_tags",
                  "run_metrics", "run_params", "runs", "experiments"):
        op.drop_table(table)
