"""Shared fixtures: real servers (skip locally when down, fail under CI=true), projects."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SHIPYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_module(name: str) -> object:
    """Import an optional test reference; skip locally without it, fail under CI=true."""
    if IN_CI:
        import importlib

        return importlib.import_module(name)
    return pytest.importorskip(name)


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


@dataclass(frozen=True)
class RedisServer:
    """The test Redis server and this test's fresh key prefix (its keys go afterwards)."""

    url: str
    key_prefix: str

    def online_config(self) -> str:
        """The shipyard.yaml line for an online store in this test's key space."""
        return (f"online_store: {{type: redis, url: '{self.url}', "
                f"key_prefix: {self.key_prefix}}}\n")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """The real Redis at REDIS_URL with a fresh key prefix, cleaned up after the test."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        server_missing("Redis", exc)
    prefix = f"t_{uuid.uuid4().hex[:12]}"
    yield RedisServer(REDIS_URL, prefix)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The test Redis URL; keys under this test's prefix (`redis_server`) are deleted after."""
    return redis_server.url


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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server mode) on a free loopback port, for the whole session."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_artifacts(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the loopback S3 endpoint; its `s3://bucket/prefix` URL."""
    import boto3

    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    bucket = f"shipyard-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/artifacts"


@pytest.fixture(params=["local", "s3"])
def artifacts_config(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """shipyard.yaml lines for a local artifact folder, or a bucket on the loopback S3."""
    if request.param == "local":
        return f"artifacts: {tmp_path / 'artifacts'}\n"
    url = request.getfixturevalue("s3_artifacts")
    return f"artifacts: {url}\nartifacts_endpoint_url: {request.getfixturevalue('s3_endpoint')}\n"
