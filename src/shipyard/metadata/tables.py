"""Table definitions of the metadata database (the migrations create them)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

registry_versions = sa.Table(
    "registry_versions",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("definitions_sha256", sa.String(64), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),  # the Catalog spec, canonical JSON
    sa.Column("changes", sa.Text, nullable=False),  # the plan that produced it, JSON
    sa.Column("applied_by", sa.String(200), nullable=False, server_default=""),
)

materialization_watermarks = sa.Table(
    "materialization_watermarks",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("view", sa.String(200), primary_key=True),
    sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),  # materialized up to
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# -- training layer (migration 0003): experiments, runs, datasets, model registry ----------

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("experiment", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # running | finished | failed
    sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_time", sa.DateTime(timezone=True)),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("environment", sa.Text, nullable=False),  # JSON: python, platform, packages
    sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
    sa.ForeignKeyConstraint(["project", "experiment"], ["experiments.project", "experiments.name"]),
    sa.Index("ix_runs_project_experiment", "project", "experiment", "start_time"),
)

run_params = sa.Table(
    "run_params",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Float),  # NULL is NaN (SQLite cannot store NaN)
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_run_metrics_run_key", "run_id", "key"),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.String(500), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),  # file | dir
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),  # lineage JSON: service, definitions version, ...
    sa.Column("artifact_sha256", sa.String(64), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Index("ix_datasets_project_created", "project", "created_at"),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("flavor", sa.String(50), nullable=False),
    sa.Column("artifact_sha256", sa.String(64), nullable=False),  # the model folder's listing
    sa.Column("artifact_size", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),  # JSON
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

_VERSION_FK = (["project", "name", "version"],
               ["model_versions.project", "model_versions.name", "model_versions.version"])

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(*_VERSION_FK),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("alias", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(*_VERSION_FK),
)

model_version_features = sa.Table(  # lineage: which view features a version consumes
    "model_version_features",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("view", sa.String(200), primary_key=True),
    sa.Column("feature", sa.String(200), primary_key=True),
    sa.ForeignKeyConstraint(*_VERSION_FK),
    sa.Index("ix_model_version_features_view", "project", "view"),
)

# -- batch layer (migration 0004): runs of batch jobs, scheduler leases ---------------------

batch_runs = sa.Table(
    "batch_runs",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),  # the run id (resume with it)
    sa.Column("kind", sa.String(20), nullable=False),  # batch_predict | materialize
    sa.Column("job", sa.String(200)),  # the job definition's name, if it ran as a job
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.Integer),
    sa.Column("engine", sa.String(20), nullable=False),
    sa.Column("input", sa.Text, nullable=False, server_default=""),
    sa.Column("output", sa.Text, nullable=False, server_default=""),
    sa.Column("features_at", sa.String(40), nullable=False, server_default=""),
    sa.Column("status", sa.String(20), nullable=False),  # running | succeeded | failed
    sa.Column("row_count", sa.BigInteger),
    sa.Column("partitions", sa.Integer),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
    sa.ForeignKeyConstraint(["project", "model_name", "model_version"], _VERSION_FK[1]),
    sa.Index("ix_batch_runs_project_started", "project", "started_at"),
    sa.Index("ix_batch_runs_model", "project", "model_name", "model_version"),
)

job_leases = sa.Table(  # one row per scheduled job: who runs it until when, which tick ran
    "job_leases",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("job", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200)),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_due_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
