"""`shipyard serve-features`: the online feature server on uvicorn (uvloop, httptools).

Workers are separate processes, so uvicorn gets an import string: `worker_app` builds the
app from environment variables the command sets (the project folder, the app factory, the
body limit, prometheus-client's multiprocess folder). The model server reuses `run_server`
with its own factory.
"""

from __future__ import annotations

import copy
import importlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.core.errors import ConfigError

PROJECT_ENV = "SHIPYARD_PROJECT_DIR"
FACTORY_ENV = "SHIPYARD_SERVE_APP"
MAX_BODY_ENV = "SHIPYARD_SERVE_MAX_BODY_BYTES"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client when it is imported
FEATURES_APP = "shipyard.cli.serve:features_app"

# The options `serve-features` and `serve` share
HostOption = Annotated[str | None, typer.Option(help="Interface to bind (default: server.host, "
                                                     "127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option(help="Port (default: server.port, 8080).")]
WorkersOption = Annotated[int, typer.Option(help="Worker processes (one per core).")]
AccessLogOption = Annotated[bool, typer.Option("--access-log/--no-access-log",
                                               help="Log every request.")]
MaxBodyOption = Annotated[float, typer.Option(help="Larger request bodies get 413.")]
GracefulTimeoutOption = Annotated[int, typer.Option(help="Seconds to let in-flight requests "
                                                    "finish on shutdown.")]
LogLevelOption = Annotated[str, typer.Option(help="debug, info, warning or error.")]


def require_server_packages() -> None:
    """Raise ConfigError with the install hint when the `server` extra is missing."""
    for module in ("fastapi", "uvicorn", "uvloop", "httptools", "orjson", "prometheus_client"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"The server needs the package {exc.name!r}, which is not "
                              "installed.", hint="pip install 'shipyard[server]'") from exc


def features_app(project: Any, **options: Any) -> Any:
    """The feature server of a project (`create_app` with the built-in routes only)."""
    from shipyard.serving import create_app

    return create_app(project, **options)


def worker_app() -> Any:
    """The app of one worker process, from the environment `run_server` prepared."""
    from shipyard.project import Project

    root = os.environ.get(PROJECT_ENV)
    if not root:
        raise ConfigError(f"{PROJECT_ENV} is not set.", hint="Start the server with "
                          "`shipyard serve-features -p <project folder>`.")
    module, _, name = os.environ.get(FACTORY_ENV, FEATURES_APP).partition(":")
    factory = getattr(importlib.import_module(module), name)
    options: dict[str, Any] = {"metrics_dir": os.environ.get(METRICS_ENV) or None}
    if os.environ.get(MAX_BODY_ENV):
        options["max_body_bytes"] = int(os.environ[MAX_BODY_ENV])
    return factory(Project.load(root), **options)


def _log_config(level: str) -> dict[str, Any]:
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["shipyard"] = {"handlers": ["default"], "level": level.upper(),
                                     "propagate": False}
    return config


def run_server(project_dir: Path, *, factory: str = FEATURES_APP, host: str, port: int,
               workers: int = 1, access_log: bool = False, max_body_bytes: int | None = None,
               graceful_timeout_seconds: int = 30, log_level: str = "info") -> None:
    """Serve `factory(project)` with uvicorn until SIGINT/SIGTERM (then drain and stop)."""
    import uvicorn

    from shipyard.serving.http_protocol import HttpProtocol

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}.", hint="e.g. --workers 2")
    os.environ[PROJECT_ENV] = str(project_dir.resolve())
    os.environ[FACTORY_ENV] = factory
    if max_body_bytes is not None:
        os.environ[MAX_BODY_ENV] = str(max_body_bytes)
    metrics_dir = None
    if workers > 1 and not os.environ.get(METRICS_ENV):
        metrics_dir = tempfile.mkdtemp(prefix="shipyard-metrics-")
        os.environ[METRICS_ENV] = metrics_dir
    try:
        uvicorn.run("shipyard.cli.serve:worker_app", factory=True, host=host, port=port,
                    workers=workers, loop="uvloop", http=HttpProtocol, lifespan="on",
                    access_log=access_log, log_config=_log_config(log_level),
                    log_level=log_level, timeout_graceful_shutdown=graceful_timeout_seconds,
                    server_header=False,
                    # a worker imports pandas, pyarrow, duckdb... before it can answer the
                    # supervisor's ping: on a busy machine that takes more than the 5 s default
                    timeout_worker_healthcheck=120)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop(METRICS_ENV, None)


def serve_features(
    project: ProjectOption = Path("."),
    host: HostOption = None,
    port: PortOption = None,
    workers: WorkersOption = 1,
    access_log: AccessLogOption = False,
    max_body_mb: MaxBodyOption = 16.0,
    graceful_timeout: GracefulTimeoutOption = 30,
    log_level: LogLevelOption = "info",
) -> None:
    """Serve online features over HTTP: /v1/features/online, /v1/push, health and metrics."""
    require_server_packages()
    with open_project(project) as proj:  # fail fast, in one line, on a broken project
        server = proj.settings.server
        root = proj.root
        proj.features.online  # noqa: B018 - builds the store: a bad store config fails here
    bind_host, bind_port = host or server.host, port or server.port
    console.print(f"Serving features of {root} on http://{bind_host}:{bind_port} "
                  f"({workers} worker{'s' if workers > 1 else ''})", highlight=False)
    run_server(root, host=bind_host, port=bind_port, workers=workers, access_log=access_log,
               max_body_bytes=int(max_body_mb * 1024 * 1024),
               graceful_timeout_seconds=graceful_timeout, log_level=log_level)
