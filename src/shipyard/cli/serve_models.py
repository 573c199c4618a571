"""`shipyard serve`: the model server (deployments, predictions, v2 protocol) and features."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.cli.serve import (
    AccessLogOption,
    GracefulTimeoutOption,
    HostOption,
    LogLevelOption,
    MaxBodyOption,
    PortOption,
    WorkersOption,
    run_server,
)

if TYPE_CHECKING:
    from shipyard.project import Project

MODEL_APP = "shipyard.serving.model_server:model_app"


def serve(
    project: ProjectOption = Path("."),
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="A model to serve, e.g. fraud@champion or fraud/3 (repeat it); "
                              "default: `deployments:` in shipyard.yaml.")] = None,
    host: HostOption = None,
    port: PortOption = None,
    workers: WorkersOption = 1,
    access_log: AccessLogOption = False,
    max_body_mb: MaxBodyOption = 16.0,
    graceful_timeout: GracefulTimeoutOption = 30,
    log_level: LogLevelOption = "info",
) -> None:
    """Serve models over HTTP: /v1/models/NAME/predict, the v2 protocol, features, metrics."""
    from shipyard.serving.model_server import MODELS_ENV, with_models

    models = list(model or [])
    with open_project(project) as proj:  # fail fast, in one line, on a broken project
        served = with_models(proj, models)
        refs = [d.model for d in served.settings.deployments]
        if not refs:
            from shipyard.core.errors import ConfigError

            raise ConfigError("No model to serve.",
                              hint="Pass --model NAME@ALIAS, or list `deployments:` in "
                                   "shipyard.yaml (e.g. `- model: fraud@champion`).")
        for ref in refs:
            proj.models.get_version(ref)  # an unknown model or alias fails here, in one line
        server, root = proj.settings.server, proj.root
    # one OpenMP/BLAS thread per worker, set before the workers import the libraries
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    os.environ[MODELS_ENV] = json.dumps(models)
    bind_host, bind_port = host or server.host, port or server.port
    console.print(f"Serving {', '.join(refs)} of {root} on http://{bind_host}:{bind_port} "
                  f"({workers} worker{'s' if workers > 1 else ''})", highlight=False)
    run_server(root, factory=MODEL_APP, host=bind_host, port=bind_port, workers=workers,
               access_log=access_log, max_body_bytes=int(max_body_mb * 1024 * 1024),
               graceful_timeout_seconds=graceful_timeout, log_level=log_level)


# -- demo stage (shipyard demo) ------------------------------------------------------------

_DEMO_METRICS = ("shipyard_prediction_requests_total", "shipyard_prediction_duration_seconds_sum",
                 "shipyard_prediction_duration_seconds_count", "shipyard_prediction_batch_size_sum",
                 "shipyard_prediction_log_written_total")


def _ensure_champion(project: Project, state: dict[str, Any]) -> str:
    """`fraud@champion`, registering a quick model on fraud_v2 when the demo has none."""
    from shipyard.core.errors import NotFoundError

    try:
        return project.models.get_version("fraud@champion").ref
    except NotFoundError:
        from sklearn.ensemble import HistGradientBoostingClassifier

        frame = state["training_set"]
        inputs = frame.select_dtypes("number").drop(
            columns=["customer_id", "merchant_id", "is_fraud"], errors="ignore")
        model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
        version = project.models.register("fraud", model.fit(inputs, frame["is_fraud"]),
                                          feature_service="fraud_v2")
        project.models.set_alias("fraud", "champion", version.version)
        return version.ref


def _http(port: int, path: str, body: Any = None) -> tuple[int, bytes]:
    """One request to the demo server on loopback (0: no answer)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if body is None:
            conn.request("GET", path)
        else:
            conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def stage_serve(project: Project, state: dict[str, Any]) -> str:
    """Demo stage: start `shipyard serve`, send real transactions, show answers and metrics."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    import pandas as pd
    from rich.table import Table

    ref = _ensure_champion(project, state)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = project.root / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "serve", "-p", str(project.root),
         "--model", "fraud@champion", "--port", str(port)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while _http(port, "/readyz")[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                from shipyard.core.errors import ShipyardError

                raise ShipyardError(f"The model server did not start; see {log}.")
            time.sleep(0.1)
        recent = pd.read_parquet(state["paths"]["labels"]).tail(5)
        table = Table("customer", "merchant", "amount", "prediction", "P(fraud)", "version",
                      "request id", title=f"POST http://127.0.0.1:{port}/v1/models/fraud/predict")
        for row in recent.itertuples():
            body = {"entities": {"customer_id": int(row.customer_id),
                                 "merchant_id": int(row.merchant_id)},
                    "request": {"amount": float(row.amount)}}
            status, raw = _http(port, "/v1/models/fraud/predict", body)
            answer = json.loads(raw or b"{}")
            cells = [str(row.customer_id), str(row.merchant_id), f"{row.amount:.2f}"]
            if status != 200:
                table.add_row(*cells, f"HTTP {status}", answer.get("message", ""), "", "")
                continue
            table.add_row(*cells, str(answer["predictions"][0]),
                          f"{answer['probabilities'][0][-1]:.4f}", str(answer["version"]),
                          answer["request_id"])
        console.print(table)
        metrics = _http(port, "/metrics")[1].decode().splitlines()
        for line in metrics:
            if line.startswith(_DEMO_METRICS):
                console.print(f"  {line}", highlight=False, soft_wrap=True)
        served = {m.split("{")[0].rsplit("_", 1)[1]: float(m.rsplit(" ", 1)[1]) for m in metrics
                  if m.startswith(("shipyard_prediction_duration_seconds_sum",
                                   "shipyard_prediction_duration_seconds_count"))}
    finally:
        process.send_signal(signal.SIGTERM)  # graceful: in-flight requests finish, log flushes
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    logged = project.predictions.read("fraud")
    mean_ms = served.get("sum", float("nan")) / max(served.get("count", 0), 1) * 1000
    return (f"{ref} answered {len(recent)} transactions ({mean_ms:.1f} ms each in the server, "
            f"features looked up), and stopped; the prediction log holds {len(logged)}")
