"""Fixtures of the online-store contract tests: every test runs on SQLite and on real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import shipyard as sy
from tests.conftest import ProjectFactory
from tests.contract._online import DEFINITIONS, write_sources


@pytest.fixture(params=["sqlite", "redis"])
def online_config(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The shipyard.yaml line of the online store under test."""
    if request.param == "sqlite":
        return f"online_store: {{type: sqlite, path: '{tmp_path / 'online.db'}'}}\n"
    return request.getfixturevalue("redis_server").online_config()


OnlineProjectFactory = Callable[..., sy.Project]


@pytest.fixture
def online_project_factory(make_project: ProjectFactory, online_config: str,
                           ) -> Iterator[OnlineProjectFactory]:
    """Make, fill and apply projects (with the online-test definitions) on this store."""
    opened: list[sy.Project] = []

    def make(name: str = "proj", folder: str = "project",
             definitions: str = DEFINITIONS) -> sy.Project:
        root = make_project(definitions, name=name, folder=folder, extra_config=online_config)
        write_sources(root)
        project = sy.Project.load(root)
        project.apply()
        opened.append(project)
        return project

    yield make
    for project in opened:
        project.close()


@pytest.fixture
def online_project(online_project_factory: OnlineProjectFactory) -> sy.Project:
    """An applied project with the online-test definitions, nothing materialized yet."""
    return online_project_factory()
