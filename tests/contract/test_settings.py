"""Config precedence: arguments > SHIPYARD_* variables > shipyard.yaml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard as sy
from shipyard.settings import RedisOnlineStoreConfig, SqliteOnlineStoreConfig
from tests.conftest import ProjectFactory


def write_config(root: Path, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "shipyard.yaml").write_text(text)


def test_a_file_with_only_the_project_name_uses_embedded_defaults(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  ) -> None:
    monkeypatch.delenv("SHIPYARD_METADATA", raising=False)
    write_config(tmp_path, "project: shop\n")
    settings = sy.Project.load(tmp_path).settings
    assert settings.metadata == f"sqlite:///{tmp_path}/.shipyard/metadata.db"
    assert settings.offline_store.type == "duckdb"
    assert isinstance(settings.online_store, SqliteOnlineStoreConfig)
    assert settings.online_store.path == str(tmp_path / ".shipyard/online.db")
    assert settings.artifacts == str(tmp_path / ".shipyard/artifacts")


def test_env_overrides_file_and_arguments_override_env(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, "project: shop\nmetadata: sqlite:///from-file.db\n"
                           "server: {port: 9000, host: 0.0.0.0}\n")
    assert sy.Project.load(tmp_path).settings.metadata.endswith("/from-file.db")
    monkeypatch.setenv("SHIPYARD_METADATA", "sqlite:///from-env.db")
    monkeypatch.setenv("SHIPYARD_SERVER__PORT", "9100")
    settings = sy.Project.load(tmp_path).settings
    assert settings.metadata.endswith("/from-env.db")
    assert settings.server.port == 9100 and settings.server.host == "0.0.0.0"  # nested merge
    settings = sy.Project.load(tmp_path, metadata="sqlite:///from-arg.db").settings
    assert settings.metadata.endswith("/from-arg.db")


def test_env_can_switch_a_backend_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, "project: shop\nonline_store: {type: sqlite, path: on.db}\n")
    monkeypatch.setenv("SHIPYARD_ONLINE_STORE__TYPE", "redis")
    monkeypatch.setenv("SHIPYARD_ONLINE_STORE__URL", "redis://127.0.0.1:6379/3")
    store = sy.Project.load(tmp_path).settings.online_store
    assert isinstance(store, RedisOnlineStoreConfig) and store.url.endswith("/3")


@pytest.mark.parametrize("text, message", [
    ("metadata: x\n", "'project' is invalid: Field required"),
    ("project: p\nonline_store: {type: memcached}\n", "online_store"),
    ("project: p\nofline_store: {type: duckdb}\n", "'ofline_store' is invalid"),
    ("project: [unclosed\n", "is not valid YAML"),
    ("- a list\n", "must hold a mapping"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    write_config(tmp_path, text)
    with pytest.raises(sy.ConfigError, match=message) as info:
        sy.Project.load(tmp_path)
    assert info.value.hint


def test_missing_config_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(sy.ConfigError, match="No shipyard.yaml") as info:
        sy.Project.load(tmp_path)
    assert "shipyard init" in (info.value.hint or "")


def test_metadata_url_from_env_is_the_database_used(make_project: ProjectFactory,
                                                    metadata_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The same project, pointed by SHIPYARD_METADATA at SQLite or PostgreSQL, applies there."""
    root = make_project("import shipyard as sy\nc = sy.Entity('c')\n")
    (root / "shipyard.yaml").write_text("project: proj\nmetadata: sqlite:///elsewhere.db\n")
    monkeypatch.setenv("SHIPYARD_METADATA", metadata_url)
    project = sy.Project.load(root)
    assert project.apply().version == 1
    assert not (root / "elsewhere.db").exists()
    dialect = project.db.engine.dialect.name
    assert dialect == ("sqlite" if metadata_url.startswith("sqlite") else "postgresql")
    project.close()
    assert sy.Project.load(root).registry.list_versions()[0].version == 1


def test_unreachable_database_is_backend_unavailable(tmp_path: Path) -> None:
    write_config(tmp_path, "project: p\nmetadata: postgresql://nobody@127.0.0.1:1/none\n")
    with pytest.raises(sy.BackendUnavailable, match="Cannot connect") as info:
        sy.Project.load(tmp_path).registry.list_versions()
    assert "metadata" in (info.value.hint or "")
