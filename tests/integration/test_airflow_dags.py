"""The exported DAG in a real Airflow (its own virtualenv, .venv-airflow: Airflow pins
dependencies ours would clash with): DagBag loads it without import errors, and
`airflow dags test` runs the pipeline's tasks for real on a SQLite Airflow database."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import shipyard as sy
from shipyard.integrations.airflow import build_dag_spec, write_dag
from tests.conftest import server_missing
from tests.unit.batch.fraud_project import make_fraud_project

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_VENV = ROOT / ".venv-airflow"
AIRFLOW_VERSION = "3.3.2"
SHIPYARD_BIN = str(Path(sys.executable).with_name("shipyard"))
JOBS = """jobs:
  - {name: views, kind: materialize, cron: "0 * * * *"}
  - {name: nightly, kind: batch_predict, model: fraud@champion, input: data/entities.parquet,
     output: "scores/{run_id}", cron: "0 2 * * *"}
monitoring:
  model: fraud@champion
  alerts: [{metric: drift, column: '*', window: 1d}]
"""
DAGBAG_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": {dag_id: {"schedule": str(dag.schedule),
                                    "dagrun_timeout_s": dag.dagrun_timeout.total_seconds(),
                                    "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids),
                                                          "retries": t.retries,
                                                          "timeout_s": t.execution_timeout.total_seconds()}
                                              for t in dag.tasks}}
                           for dag_id, dag in bag.dags.items()}}))
"""


def _installed(python: Path) -> bool:
    if not python.exists():
        return False
    done = subprocess.run([str(python), "-c", "import airflow; print(airflow.__version__)"],
                          capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == AIRFLOW_VERSION


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """Airflow's interpreter; the virtualenv is created on first use (about 2 min) and reused."""
    python = AIRFLOW_VENV / "bin" / "python"
    with open(Path(tempfile.gettempdir()) / "shipyard-venv-airflow.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions must not install at once
        if not _installed(python):
            try:
                subprocess.run([sys.executable, "-m", "venv", "--clear", str(AIRFLOW_VENV)],
                               check=True, capture_output=True, timeout=120)
                subprocess.run([str(python), "-m", "pip", "install", "-q",
                                f"apache-airflow=={AIRFLOW_VERSION}"], check=True,
                               capture_output=True, timeout=900)
            except (subprocess.SubprocessError, OSError) as exc:
                server_missing(f"Airflow {AIRFLOW_VERSION} (pip install into {AIRFLOW_VENV})", exc)
    return python


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sy.Project]:
    root = tmp_path_factory.mktemp("airflow") / "fraud"
    with make_fraud_project(root, extra_config=JOBS) as proj:
        labels = pd.read_parquet(root / "data" / "labels.parquet")
        labels[["customer_id", "merchant_id", "amount", "event_timestamp"]].head(300).to_parquet(
            root / "data" / "entities.parquet")
        yield proj


def _airflow_env(home: Path, dags: Path) -> dict[str, str]:
    return {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}


def test_dagbag_loads_the_dag_without_import_errors(airflow_python: Path, project: sy.Project,
                                                    tmp_path: Path) -> None:
    spec = build_dag_spec(project.settings, project_dir=str(project.root), retries=3,
                          sla_minutes=90, task_timeout_minutes=20, shipyard_bin=SHIPYARD_BIN)
    write_dag(spec, tmp_path / "dags")
    done = subprocess.run([str(airflow_python), "-c", DAGBAG_SCRIPT, str(tmp_path / "dags")],
                          capture_output=True, text=True, timeout=120,
                          env=_airflow_env(tmp_path, tmp_path / "dags"))
    assert done.returncode == 0, done.stderr[-3000:]
    bag = json.loads(done.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    dag = bag["dags"]["shipyard_fraud"]
    assert dag["dagrun_timeout_s"] == 90 * 60 and "0 2 * * *" in dag["schedule"]
    assert dag["tasks"] == {
        "materialize_views": {"upstream": [], "retries": 3, "timeout_s": 1200.0},
        "batch_predict_nightly": {"upstream": ["materialize_views"], "retries": 3,
                                  "timeout_s": 1200.0},
        "monitor": {"upstream": ["batch_predict_nightly"], "retries": 3, "timeout_s": 1200.0}}


@pytest.mark.slow
def test_airflow_dags_test_runs_the_pipeline(airflow_python: Path, project: sy.Project,
                                            tmp_path: Path) -> None:
    # the monitor needs a prediction log with traffic, which this project has not: leave it out
    spec = build_dag_spec(project.settings, project_dir=str(project.root), monitor=False,
                          dag_id="shipyard_pipeline_test", shipyard_bin=SHIPYARD_BIN, retries=0)
    dags = tmp_path / "dags"
    write_dag(spec, dags)
    env = _airflow_env(tmp_path, dags)
    airflow = str(airflow_python.with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], capture_output=True, text=True,
                             env=env, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    done = subprocess.run([airflow, "dags", "test", spec.dag_id, "2026-11-01T02:00:00+00:00"],
                          capture_output=True, text=True, env=env, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0 and "state=success" in log, log[-4000:]
    runs = {job: project.batch.list_runs(job=job, limit=1) for job in ("views", "nightly")}
    assert all(r and r[0].status == "succeeded" for r in runs.values()), runs
    scores = pd.read_parquet(project.root / "scores" / runs["nightly"][0].id)
    assert len(scores) == 300 and scores["proba_1"].between(0, 1).all()
