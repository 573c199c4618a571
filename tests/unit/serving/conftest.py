"""An applied project on SQLite (metadata and online store) and its app, in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard as sy
from tests.conftest import ProjectFactory
from tests.contract._online import DEFINITIONS, NOW, write_sources

TOKEN = "unit-test-token-5b7e"  # noqa: S105 - a throwaway test secret


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """The HTTP layer is the same on any metadata database: SQLite only."""
    return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"


@pytest.fixture
def project(make_project: ProjectFactory, tmp_path: Path) -> Iterator[sy.Project]:
    """An applied, materialized project whose server has a token for writes."""
    root = make_project(DEFINITIONS, extra_config=(
        f"online_store: {{type: sqlite, path: '{tmp_path / 'online.db'}'}}\n"
        f"server: {{auth_token: {TOKEN}}}\n"))
    write_sources(root)
    with sy.Project.load(root) as proj:
        proj.apply()
        proj.features.materialize(None, NOW)
        yield proj
