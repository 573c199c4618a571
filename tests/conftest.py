"""Shared fixtures: real servers (skip locally when down, fail under CI=true), projects."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SHIPYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_missing(name: str, error: Exception) -> None:
    """Skip a test whose server is down; under CI=true fail it instead."""
    message = f"{name} is not reachable: {error}"
    if IN_CI:
        pytest.fail(f"{message} (CI must run every test)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    from shipyard.metadata.db import normalize_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(normalize_url(POSTGRES_URL))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        server_missing("PostgreSQL", exc)
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL metadata."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"
    return request.getfixturevalue("postgres_url")


ProjectFactory = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path, metadata_url: str) -> ProjectFactory:
    """Write a project folder: shipyard.yaml on this test's metadata DB, plus definitions."""

    def make(definitions: str = "", *, name: str = "proj", folder: str = "project",
             extra_config: str = "") -> Path:
        root = tmp_path / folder
        root.mkdir(parents=True, exist_ok=True)
        (root / "shipyard.yaml").write_text(
            f"project: {name}\nmetadata: {metadata_url}\n{extra_config}")
        (root / "definitions.py").write_text(textwrap.dedent(definitions))
        return root

    return make
