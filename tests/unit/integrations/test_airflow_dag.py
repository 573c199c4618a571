"""The Airflow DAG built from shipyard.yaml's jobs: tasks, order, retries, SLA, the file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shipyard.core.errors import ConfigError
from shipyard.integrations.airflow import build_dag_spec, dag_source, write_dag
from shipyard.settings import load_settings

JOBS = """project: fraud
jobs:
  - {name: views, kind: materialize, cron: "0 * * * *"}
  - {name: nightly, kind: batch_predict, model: fraud@champion, input: in.parquet,
     output: out/, cron: "0 2 * * *"}
  - {name: "campaign it's", kind: batch_predict, model: churn@champion, input: c.parquet,
     output: c/, cron: "0 2 * * *", engine: spark}
monitoring:
  model: fraud@champion
  alerts: [{metric: drift, column: '*', window: 1d}]
"""


def settings(tmp_path: Path, text: str = JOBS):  # noqa: ANN201 - the Settings of `text`
    (tmp_path / "shipyard.yaml").write_text(text)
    return load_settings(tmp_path)


def test_the_pipeline_is_materialize_then_predict_then_monitor(tmp_path: Path) -> None:
    spec = build_dag_spec(settings(tmp_path), project_dir="/srv/fraud", retries=3,
                          sla_minutes=90, task_timeout_minutes=30)
    ids = [t.task_id for t in spec.tasks]
    assert ids == ["materialize_views", "batch_predict_nightly", "batch_predict_campaign_it_s",
                   "monitor"]
    upstream = {t.task_id: t.upstream for t in spec.tasks}
    assert upstream["batch_predict_nightly"] == ("materialize_views",)
    assert set(upstream["monitor"]) == {"batch_predict_nightly", "batch_predict_campaign_it_s"}
    assert all(t.retries == 3 and t.timeout_minutes == 30 for t in spec.tasks)
    assert spec.schedule == "0 2 * * *" and spec.sla_minutes == 90
    assert spec.tasks[2].command == ["jobs", "run", "campaign it's"]


def test_without_materialize_jobs_the_views_are_brought_up_to_the_run_end(tmp_path: Path) -> None:
    text = JOBS.replace('  - {name: views, kind: materialize, cron: "0 * * * *"}\n', "")
    spec = build_dag_spec(settings(tmp_path, text), project_dir=".", monitor=False)
    assert spec.tasks[0].command == ["materialize-incremental",
                                     "{{ data_interval_end.isoformat() }}"]
    assert [t.task_id for t in spec.tasks][-1] == "batch_predict_campaign_it_s"


def test_the_dag_file_is_valid_python_with_every_task(tmp_path: Path) -> None:
    spec = build_dag_spec(settings(tmp_path), project_dir="/srv/it's here",
                          shipyard_bin="/opt/shipyard/bin/shipyard")
    path = write_dag(spec, tmp_path / "dags")
    source = path.read_text()
    assert path.name == "shipyard_fraud.py" and source == dag_source(spec)
    tree = ast.parse(source)
    values = {n.targets[0].id: n.value for n in tree.body
              if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)}
    tasks = ast.literal_eval(values["TASKS"])
    env = ast.literal_eval(values["ENV"])
    assert env == {"SHIPYARD_PROJECT_DIR": "/srv/it's here"}
    commands = {t["task_id"]: t["bash_command"] for t in tasks}
    assert commands["batch_predict_campaign_it_s"] == (
        "/opt/shipyard/bin/shipyard jobs run 'campaign it'\"'\"'s'")
    assert commands["monitor"].endswith('--at "{{ data_interval_end.isoformat() }}"')
    assert "import shipyard" not in source and "dagrun_timeout=SLA" in source
    assert "execution_timeout=timedelta(minutes=task[\"timeout_minutes\"])" in source


@pytest.mark.parametrize(("text", "options", "message"), [
    ("project: p\n", {}, "no batch_predict job"),
    (JOBS.replace('cron: "0 2 * * *", engine', 'cron: "0 3 * * *", engine'), {},
     "different schedules"),
    (JOBS, {"dag_id": "bad id!"}, "not a valid DAG id"),
    (JOBS, {"sla_minutes": 10, "task_timeout_minutes": 60}, "only 10 min"),
    (JOBS, {"retries": -1}, "Retries must be"),
])
def test_bad_settings_are_refused(tmp_path: Path, text: str, options: dict[str, object],
                                  message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_dag_spec(settings(tmp_path, text), project_dir=".", **options)  # type: ignore[arg-type]


def test_the_cli_exports_the_dag(tmp_path: Path) -> None:
    from shipyard.cli.main import run

    settings(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run(["airflow", "export", "-p", str(tmp_path), "--out", str(tmp_path / "dags"),
             "--dag-id", "fraud_nightly", "--schedule", "@daily"])
    assert exit_info.value.code == 0
    source = (tmp_path / "dags" / "fraud_nightly.py").read_text()
    assert "schedule='@daily'" in source and str(tmp_path) in source
