"""Typed settings: explicit arguments, then SHIPYARD_* variables, then shipyard.yaml, then defaults."""

from __future__ import annotations

import json
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shipyard.core.errors import ConfigError

CONFIG_FILE = "shipyard.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DuckDBOfflineStoreConfig(_Section):
    type: Literal["duckdb"] = "duckdb"
    threads: int | None = None


class SparkOfflineStoreConfig(_Section):
    type: Literal["spark"]
    master: str = "local[*]"


class SqliteOnlineStoreConfig(_Section):
    type: Literal["sqlite"] = "sqlite"
    path: str = ".shipyard/online.db"


class RedisOnlineStoreConfig(_Section):
    type: Literal["redis"]
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "shipyard"  # keys are <key_prefix>:<project>:<view>:<entity key>


OfflineStoreConfig = Annotated[DuckDBOfflineStoreConfig | SparkOfflineStoreConfig,
                               Field(discriminator="type")]
OnlineStoreConfig = Annotated[SqliteOnlineStoreConfig | RedisOnlineStoreConfig,
                              Field(discriminator="type")]


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 8080
    auth_token: str | None = Field(default=None, repr=False)
    auth_reads: bool = False


class PredictionLogConfig(_Section):
    path: str = ".shipyard/predictions"
    flush_interval_seconds: float = Field(default=1.0, gt=0)  # a crash loses at most this
    max_queue_rows: int = Field(default=100_000, gt=0)  # past it predictions are dropped, counted
    segment_max_bytes: int = Field(default=64 << 20, gt=0)
    segment_max_age_seconds: float = Field(default=300.0, gt=0)


class DeploymentConfig(_Section):
    model: str  # 'fraud@champion' (follows the alias) or 'fraud/3'
    name: str | None = None  # the URL name (/v1/models/<name>/predict); default: the model's
    max_batch_size: int = Field(default=32, ge=1)
    max_wait_ms: float = Field(default=1.0, ge=0)
    max_queue: int = Field(default=256, ge=1)  # waiting requests; past it: 503
    timeout_ms: float = Field(default=2_000.0, gt=0)  # past it: 504
    log_predictions: bool = True
    runtime: Literal["native", "onnx"] = "native"
    poll_seconds: float = Field(default=1.0, gt=0)  # how often an alias is re-resolved


class SparkConfig(_Section):
    master: str = "local[*]"  # or spark://host:7077, yarn, k8s://...
    conf: dict[str, str] = {}  # extra spark.* settings, e.g. {"spark.driver.memory": "4g"}


class JobConfig(_Section):
    name: str
    kind: Literal["materialize", "batch_predict", "monitor"]  # monitor: evaluate the alert rules
    model: str | None = None  # batch_predict: "fraud@champion"
    input: str | None = None  # batch_predict: a Parquet file or folder
    output: str | None = None  # batch_predict: a folder; "{date}" and "{run_id}" are filled in
    cron: str | None = None  # UTC, e.g. "0 2 * * *"; none: run only by `shipyard jobs run`
    engine: Literal["local", "spark"] = "local"
    options: dict[str, Any] = {}  # predict or materialize keyword options


class AlertRuleConfig(_Section):
    metric: str  # drift, missing_share, auc, estimated_auc, ...: see shipyard.monitoring.alerts
    column: str = "*"  # a column (or a feature view, for freshness_seconds); "*" for all
    model: str | None = None  # default: monitoring.model
    window: str = "1d"  # whole hours or days: "6h", "1d", "7d"
    threshold: float | None = None  # none: the metric's default (drift: the test's own)
    severity: Literal["info", "warning", "critical"] = "warning"
    name: str | None = None  # default: "<metric>:<column>" (+ "@<window>", "[<threshold>]" if not default)
    min_rows: int = Field(default=100, ge=1)  # rows (labeled rows for performance) to judge


class MonitoringConfig(_Section):
    model: str | None = None  # the watched model, e.g. "fraud@champion"
    # the deployed version's training split, or past predictions; start/end bound either
    reference: Literal["training", "predictions"] = "training"
    reference_start: str | None = None
    reference_end: str | None = None
    webhook_url: str | None = None  # alert events are POSTed here as JSON
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    alerts: list[AlertRuleConfig] = []

    @field_validator("webhook_url")
    @classmethod
    def _http_webhook(cls, url: str | None) -> str | None:
        """Only http(s) URLs with a host (the value is not echoed: it may hold a secret)."""
        from urllib.parse import urlsplit

        if url is not None and (urlsplit(url).scheme not in ("http", "https")
                                or not urlsplit(url).hostname):
            raise ValueError("it must be an http:// or https:// URL with a host")
        return url


class Settings(_Section):
    """Everything in shipyard.yaml; every key but `project` has an embedded default.

    SHIPYARD_<KEY> variables override it (SHIPYARD_SERVER__PORT for a nested key; JSON for a
    section, list or mapping). They are read here rather than with pydantic-settings, whose
    import alone costs more than loading a model.
    """

    project: str
    metadata: str = "sqlite:///.shipyard/metadata.db"
    offline_store: OfflineStoreConfig = DuckDBOfflineStoreConfig()
    online_store: OnlineStoreConfig = SqliteOnlineStoreConfig()
    artifacts: str = ".shipyard/artifacts"
    artifacts_endpoint_url: str | None = None
    server: ServerConfig = ServerConfig()
    deployments: list[DeploymentConfig] = []
    prediction_log: PredictionLogConfig = PredictionLogConfig()
    spark: SparkConfig = SparkConfig()
    jobs: list[JobConfig] = []
    monitoring: MonitoringConfig = MonitoringConfig()



ENV_PREFIX = "SHIPYARD_"
_NESTED = "__"


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _annotation_at(path: list[str]) -> Any:
    """The annotation of the settings key at `path` (None when there is no such key)."""
    annotation: Any = Settings
    for key in path:
        fields: dict[str, Any] = {}
        for member in _members(annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                fields.update(member.model_fields)
        if key not in fields:
            return None
        annotation = fields[key].annotation
    return annotation


def _is_structured(annotation: Any) -> bool:
    """Whether a variable for this key holds JSON (a section, list or mapping)."""
    return any(get_origin(m) in (dict, list) or m in (dict, list)
               or (isinstance(m, type) and issubclass(m, BaseModel)) for m in _members(annotation))


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`base` updated by `top`, mappings merged key by key."""
    merged = dict(base)
    for key, value in top.items():
        old = merged.get(key)
        merged[key] = (_merge(old, value) if isinstance(old, dict) and isinstance(value, Mapping)
                       else value)
    return merged


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings SHIPYARD_* variables give (case-insensitive; '__' separates nested keys)."""
    found: list[tuple[list[str], Any]] = []
    for name, raw in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX):].lower().split(_NESTED)
        if path[0] not in Settings.model_fields:
            continue  # not a setting (pydantic-settings ignored these too)
        value: Any = raw
        annotation = _annotation_at(path)
        if annotation is not None and _is_structured(annotation):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name} is not valid JSON: {exc}.",
                                  hint=f"Set it to a JSON value, e.g. {name}='{{...}}' or '[...]'."
                                  ) from exc
        found.append((path, value))
    data: dict[str, Any] = {}
    for path, value in sorted(found, key=lambda item: len(item[0])):  # sections before keys
        node = data
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        old = node.get(path[-1])
        node[path[-1]] = (_merge(old, value) if isinstance(old, dict) and isinstance(value, dict)
                          else value)
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"No {CONFIG_FILE} in {str(path.parent)!r}.",
                          hint="Run `shipyard init` there, or pass the project folder.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", hint="Fix its syntax.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping, not {type(data).__name__}.",
                          hint="Start it with `project: <name>`.")
    return data


def _drop_switched_backends(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """Forget a YAML backend section whose `type` an env var changes (its keys don't apply)."""
    env = {k.upper(): v for k, v in environ.items()}
    kept = dict(data)
    for section in ("offline_store", "online_store"):
        new_type = env.get(f"SHIPYARD_{section.upper()}__TYPE")
        old = data.get(section)
        if new_type and isinstance(old, dict) and old.get("type", new_type) != new_type:
            del kept[section]
    return kept


def load_settings(root: Path, **overrides: Any) -> Settings:
    """Settings for the project in `root`, with relative paths made absolute."""
    environ = dict(os.environ)
    data = _drop_switched_backends(_read_yaml(root / CONFIG_FILE), environ)
    try:
        settings = Settings.model_validate(_merge(_merge(data, _from_env(environ)), overrides))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"Setting {where!r} is invalid: {first['msg']}.",
                          hint=f"Fix it in {root / CONFIG_FILE} or its SHIPYARD_* variable.",
                          ) from exc
    return _absolute(settings, root)


def _absolute(settings: Settings, root: Path) -> Settings:
    def resolve(path: str) -> str:
        return path if "://" in path or Path(path).is_absolute() else str(root / path)

    updates: dict[str, Any] = {}
    if settings.metadata.startswith("sqlite:///") and settings.metadata != "sqlite:///:memory:":
        updates["metadata"] = "sqlite:///" + resolve(settings.metadata.removeprefix("sqlite:///"))
    updates["artifacts"] = resolve(settings.artifacts)
    updates["prediction_log"] = settings.prediction_log.model_copy(
        update={"path": resolve(settings.prediction_log.path)})
    if isinstance(settings.online_store, SqliteOnlineStoreConfig):
        updates["online_store"] = settings.online_store.model_copy(
            update={"path": resolve(settings.online_store.path)})
    return settings.model_copy(update=updates)
