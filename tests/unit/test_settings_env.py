"""SHIPYARD_* variables, read without pydantic-settings and with the rules Shipyard relied on.

Nested keys with '__', case-insensitive names, JSON for sections, lists and mappings, merged
key by key over shipyard.yaml; variables that name no setting are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.core.errors import ConfigError
from shipyard.settings import load_settings


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("SHIPYARD_"):
            monkeypatch.delenv(name)
    (tmp_path / "shipyard.yaml").write_text(
        "project: shop\nspark: {conf: {spark.a: '1'}}\nserver: {host: 0.0.0.0}\n")
    return tmp_path


def test_json_values_merge_into_the_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_SPARK__CONF", '{"spark.b": "2"}')
    monkeypatch.setenv("SHIPYARD_DEPLOYMENTS", '[{"model": "fraud@champion"}]')
    monkeypatch.setenv("shipyard_server__port", "9200")  # names are case-insensitive
    monkeypatch.setenv("SHIPYARD_NOT_A_SETTING", "ignored")
    settings = load_settings(root)
    assert settings.spark.conf == {"spark.a": "1", "spark.b": "2"}
    assert [d.model for d in settings.deployments] == ["fraud@champion"]
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9200)


def test_a_whole_section_then_its_keys(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_SERVER", '{"port": 1, "auth_reads": true}')
    monkeypatch.setenv("SHIPYARD_SERVER__PORT", "2")  # a key beats its section's JSON
    monkeypatch.setenv("SHIPYARD_SERVER__AUTH_TOKEN", "{not json: a plain string}")
    server = load_settings(root).server
    assert (server.host, server.port, server.auth_reads) == ("0.0.0.0", 2, True)
    assert server.auth_token == "{not json: a plain string}"


def test_arguments_beat_variables(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", "s3://from-env")
    assert load_settings(root).artifacts == "s3://from-env"
    assert load_settings(root, artifacts="s3://from-arg").artifacts == "s3://from-arg"


@pytest.mark.parametrize("name, value, message", [
    ("SHIPYARD_SPARK__CONF", "{bad", "SHIPYARD_SPARK__CONF is not valid JSON"),
    ("SHIPYARD_SERVER__PROT", "1", "'server.prot' is invalid: Extra inputs are not permitted"),
    ("SHIPYARD_SERVER__PORT", "many", "'server.port' is invalid"),
])
def test_bad_variables_are_config_errors(root: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                         value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings(root)
