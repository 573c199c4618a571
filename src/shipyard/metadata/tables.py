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
