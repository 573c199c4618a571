"""Project: a folder with shipyard.yaml and definitions; builds the stores from settings."""

from __future__ import annotations

import importlib
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import ConfigError, NotFoundError
from shipyard.settings import CONFIG_FILE, Settings, load_settings

# The layers are imported where they are first used: a process that only loads a model
# never pays for the feature store's engines (DuckDB, Arrow) or for tracking's pandas.
if TYPE_CHECKING:
    from datetime import datetime

    from shipyard.artifacts import ArtifactStore
    from shipyard.batch import Batch
    from shipyard.experiments.api import Experiments
    from shipyard.features.catalog import Catalog
    from shipyard.features.definitions import Definition
    from shipyard.features.offline import OfflineStore
    from shipyard.features.online import OnlineStore
    from shipyard.features.registry import Plan, Registry
    from shipyard.features.store import FeatureStore
    from shipyard.metadata.db import Database
    from shipyard.models import ModelRegistry, ServiceInputs
    from shipyard.monitoring.service import Monitoring
    from shipyard.predictions import PredictionLog
    from shipyard.tracking import Tracking
    from shipyard.training import Training

_OFFLINE_STORES = {"duckdb": "shipyard.features.offline.duckdb:DuckDBOfflineStore"}
_ONLINE_STORES = {"sqlite": "shipyard.features.online.sqlite:SqliteOnlineStore",
                  "redis": "shipyard.features.online.redis:RedisOnlineStore"}


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
        from shipyard.metadata.db import Database

        url = self.settings.metadata
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return Database(url)

    @cached_property
    def registry(self) -> Registry:
        """The versioned store of applied definitions."""
        from shipyard.features.registry import Registry

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
    def online_store(self) -> OnlineStore:
        """The online store chosen in shipyard.yaml, namespaced by the project's name."""
        config = self.settings.online_store
        options = config.model_dump(exclude={"type"})
        return _load_class(_ONLINE_STORES[config.type], "online store", config.type)(
            **options, project=self.name)

    @cached_property
    def features(self) -> FeatureStore:
        """Feature retrieval (historical and online), materialization and push."""
        from shipyard.features.store import FeatureStore

        return FeatureStore(self.registry, self.offline_store, self.definitions,
                            online=lambda: self.online_store)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed artifact store (`artifacts` in shipyard.yaml)."""
        from shipyard.artifacts import open_artifact_store

        return open_artifact_store(self.settings.artifacts,
                                   endpoint_url=self.settings.artifacts_endpoint_url)

    @cached_property
    def tracking(self) -> Tracking:
        """Experiments and runs: params, metrics, tags, artifacts."""
        from shipyard.tracking import Tracking

        return Tracking(self.db, self.name, self.artifacts, self.root)

    @cached_property
    def models(self) -> ModelRegistry:
        """The model registry: versions, aliases, lineage, loading."""
        from shipyard.models import ModelRegistry

        return ModelRegistry(self.db, self.name, self.artifacts,
                             service_inputs=self._service_inputs,
                             definitions_version=lambda: (self.registry.current() or (None,))[0],
                             git_commit=self._git_commit)

    @cached_property
    def training(self) -> Training:
        """Training datasets (point-in-time, with lineage) and fit -> track -> register."""
        from shipyard.training import Training

        return Training(self.db, self.name, self.artifacts, features=lambda: self.features,
                        tracking=lambda: self.tracking, models=lambda: self.models,
                        service_inputs=self._service_inputs)

    @cached_property
    def predictions(self) -> PredictionLog:
        """The prediction log (`prediction_log` in shipyard.yaml): read it back as frames."""
        from shipyard.predictions import PredictionLog

        config = self.settings.prediction_log
        return PredictionLog(Path(config.path),
                             flush_interval_seconds=config.flush_interval_seconds,
                             max_queue_rows=config.max_queue_rows,
                             segment_max_bytes=config.segment_max_bytes,
                             segment_max_age_seconds=config.segment_max_age_seconds)

    @cached_property
    def monitoring(self) -> Monitoring:
        """Labels, drift, quality, performance, alerts and reports (`monitoring` in shipyard.yaml)."""
        from shipyard.monitoring.alerts import AlertRule
        from shipyard.monitoring.service import Monitoring, MonitoringOptions

        config = self.settings.monitoring
        options = MonitoringOptions(
            **config.model_dump(exclude={"alerts"}),
            alerts=tuple(AlertRule(**rule.model_dump()) for rule in config.alerts))
        return Monitoring(self.db, self.name, self.predictions, models=lambda: self.models,
                          get_dataset=lambda i: self.training.get_dataset(i),
                          get_run=lambda i: self.tracking.get_run(i),
                          watermarks=lambda: self.features.watermarks.list_all(),
                          newest_events=lambda: self.online_store.newest_event_times(),
                          options=options)

    @cached_property
    def experiments(self) -> Experiments:
        """A/B tests, canaries and shadow tests of served models: run, analyze, decide."""
        from shipyard.experiments.api import Experiments

        return Experiments(self.db, self.name, models=lambda: self.models,
                           predictions=lambda: self.predictions,
                           outcomes_root=Path(self.settings.prediction_log.path).parent
                           / "outcomes")

    @cached_property
    def batch(self) -> Batch:
        """Batch prediction (local engine or Spark), its run records and scheduled jobs."""
        from shipyard.batch import Batch, JobDefinition

        return Batch(self.db, self.name, self.root, features=self.features, models=self.models,
                     definitions=self.definitions,
                     jobs=[JobDefinition(**job.model_dump()) for job in self.settings.jobs],
                     engine_options={"spark": self.settings.spark.model_dump()},
                     monitor=self._run_alerts)

    def _run_alerts(self, at: datetime) -> tuple[int, int]:
        """A scheduled monitoring tick: evaluate the alert rules; (verdicts, alert events)."""
        run = self.monitoring.run_alerts(at=at)
        return len(run.verdicts), len(run.events)

    def _service_inputs(self, name: str) -> ServiceInputs:
        """What an applied feature service feeds a model (the registry's view of the catalog)."""
        from shipyard.models import Column, ServiceInputs

        current = self.registry.current()
        if current is None:
            raise NotFoundError(f"Project {self.name!r} has no applied definitions.",
                                hint="Run `shipyard apply` (or project.apply()) first.")
        version, catalog = current
        request = catalog.resolve(feature_service=name)
        views = [*catalog.feature_views.values(), *catalog.on_demand_feature_views.values()]
        dtypes = {(v.name, f.name): f.dtype for v in views for f in v.schema}
        columns = [Column(n, dtypes[o]) for n, o in zip(request.column_names(False),
                                                        request.outputs, strict=True)]
        columns += [Column(f.name, f.dtype) for f in request.request_fields
                    if f.name not in {c.name for c in columns}]
        read = {(v, f) for v, names in request.view_features.items() for f in names}
        return ServiceInputs(version, tuple(columns), tuple(sorted(read | set(request.outputs))))

    def _git_commit(self) -> str | None:
        from shipyard.tracking.git import git_state

        return git_state(self.root).commit

    def definitions(self) -> list[Definition]:
        """The definitions found in the project's Python files (imported once)."""
        from shipyard.features.discovery import discover

        if "_definitions" not in self.__dict__:
            self.__dict__["_definitions"] = discover(self.root)
        return list(self.__dict__["_definitions"])

    def validate(self) -> Catalog:
        """Validate the project's definitions together; raises DefinitionError."""
        from shipyard.features.validation import validate

        return validate(self.definitions(), self.offline_store.describe_source)

    def apply(self, *, dry_run: bool = False) -> Plan:
        """Validate and store the definitions as a new version; return what changed."""
        catalog = self.validate()
        if dry_run:
            return self.registry.plan(catalog)
        plan = self.registry.apply(catalog)
        if "features" in self.__dict__:
            self.features.refresh()
        return plan

    def close(self) -> None:
        """Release database connections and engines."""
        if "batch" in self.__dict__:
            self.batch.close()
        if "offline_store" in self.__dict__:
            self.offline_store.close()
        if "online_store" in self.__dict__:
            self.online_store.close()
        if "db" in self.__dict__:
            self.db.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
