"""Project: a folder with shipyard.yaml and definitions; builds the stores from settings."""

from __future__ import annotations

import importlib
from functools import cached_property
from pathlib import Path
from typing import Any

from shipyard.core.errors import ConfigError
from shipyard.features.catalog import Catalog
from shipyard.features.definitions import Definition
from shipyard.features.discovery import discover
from shipyard.features.offline import OfflineStore
from shipyard.features.registry import Plan, Registry
from shipyard.features.store import FeatureStore
from shipyard.features.validation import validate
from shipyard.metadata.db import Database
from shipyard.settings import CONFIG_FILE, Settings, load_settings

_OFFLINE_STORES = {"duckdb": "shipyard.features.offline.duckdb:DuckDBOfflineStore"}


def _load_class(target: str, kind: str, name: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"The {kind} {name!r} needs a package that is not installed: "
                          f"{exc.name}.", hint=f"pip install 'shipyard[{name}]'") from exc


class Project:
    """A Shipyard project: its settings, stores and sub-APIs (`features`, ...)."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings

    @classmethod
    def load(cls, path: str | Path = ".", **overrides: Any) -> Project:
        """Load the project in `path` (reads path/shipyard.yaml and SHIPYARD_* variables)."""
        root = Path(path).resolve()
        return cls(root, load_settings(root, **overrides))

    @classmethod
    def init(cls, path: str | Path, name: str | None = None) -> Project:
        """Create a project folder with a minimal shipyard.yaml, and load it."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        config = root / CONFIG_FILE
        if config.exists():
            raise ConfigError(f"{config} already exists.", hint="Use `shipyard apply` there.")
        project = name or root.resolve().name.replace("-", "_")
        config.write_text(f"project: {project}\n")
        (root / ".gitignore").write_text(".shipyard/\n")
        return cls.load(root)

    @property
    def name(self) -> str:
        return self.settings.project

    @cached_property
    def db(self) -> Database:
        """The metadata database."""
        url = self.settings.metadata
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return Database(url)

    @cached_property
    def registry(self) -> Registry:
        """The versioned store of applied definitions."""
        return Registry(self.db, self.name)

    @cached_property
    def offline_store(self) -> OfflineStore:
        """The offline engine chosen in shipyard.yaml."""
        config = self.settings.offline_store
        if config.type not in _OFFLINE_STORES:
            raise ConfigError(f"Offline store {config.type!r} is not available in this version.",
                              hint=f"Use one of {sorted(_OFFLINE_STORES)}.")
        options = config.model_dump(exclude={"type"})
        return _load_class(_OFFLINE_STORES[config.type], "offline store", config.type)(
            self.root, **options)

    @cached_property
    def features(self) -> FeatureStore:
        """Feature retrieval: historical now, online and push in later layers."""
        return FeatureStore(self.registry, self.offline_store, self.definitions)

    def definitions(self) -> list[Definition]:
        """The definitions found in the project's Python files (imported once)."""
        if "_definitions" not in self.__dict__:
            self.__dict__["_definitions"] = discover(self.root)
        return list(self.__dict__["_definitions"])

    def validate(self) -> Catalog:
        """Validate the project's definitions together; raises DefinitionError."""
        return validate(self.definitions(), self.offline_store.describe_source)

    def apply(self, *, dry_run: bool = False) -> Plan:
        """Validate and store the definitions as a new version; return what changed."""
        catalog = self.validate()
        return self.registry.plan(catalog) if dry_run else self.registry.apply(catalog)

    def close(self) -> None:
        """Release database connections and engines."""
        if "offline_store" in self.__dict__:
            self.offline_store.close()
        if "db" in self.__dict__:
            self.db.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
