"""Airflow DAGs from the jobs of shipyard.yaml: materialize -> batch predict -> monitor.

The DAG file this module writes imports Airflow only, never Shipyard: every task runs the
`shipyard` command on the worker (`shipyard jobs run NAME`, `shipyard monitor run`), so the
scheduler parses it in milliseconds and Airflow's dependencies never meet ours. It works with
Airflow 3 (`airflow.sdk`, the standard provider's BashOperator) and Airflow 2.7+.

SLAs: Airflow 3 removed task SLAs, so each task gets an `execution_timeout` (the task fails
and is retried past it) and the run a `dagrun_timeout` (the whole pipeline's SLA); on
Airflow 2 the tasks also get `sla=`, which records misses without stopping them.
"""

from __future__ import annotations

import pprint
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.core.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.settings import JobConfig, Settings

_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


@dataclass(frozen=True)
class TaskSpec:
    """One task: a shipyard command, its retries and its time limit, and what it waits for."""

    task_id: str
    command: list[str]
    upstream: tuple[str, ...] = ()
    retries: int = 2
    timeout_minutes: int = 60


@dataclass(frozen=True)
class DagSpec:
    """A whole DAG: its id, schedule, SLA and tasks (in dependency order)."""

    dag_id: str
    schedule: str | None
    tasks: list[TaskSpec]
    sla_minutes: int
    retry_delay_minutes: int = 5
    project_dir: str = "."
    shipyard_bin: str = "shipyard"
    env: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ("shipyard",)


def _task_id(job: JobConfig) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", f"{job.kind}_{job.name}").strip("_")


def build_dag_spec(settings: Settings, *, project_dir: str, dag_id: str | None = None,
                   schedule: str | None = None, retries: int = 2, retry_delay_minutes: int = 5,
                   sla_minutes: int = 120, task_timeout_minutes: int = 60,
                   shipyard_bin: str = "shipyard", monitor: bool = True,
                   env: dict[str, str] | None = None) -> DagSpec:
    """The pipeline of a project's jobs: every materialization, then every batch prediction,
    then the monitor when alert rules exist (each stage waits for the whole stage before)."""
    dag_id = dag_id or f"shipyard_{settings.project}"
    if not _DAG_ID.match(dag_id):
        raise ConfigError(f"{dag_id!r} is not a valid DAG id.",
                          hint="Use letters, digits, '_', '-' and '.' only.")
    if retries < 0 or sla_minutes <= 0 or task_timeout_minutes <= 0:
        raise ConfigError("Retries must be >= 0 and the SLA and task timeout positive.",
                          hint="e.g. --retries 2 --sla-minutes 120")
    if task_timeout_minutes > sla_minutes:
        raise ConfigError(f"A task may take {task_timeout_minutes} min but the whole run only "
                          f"{sla_minutes} min.", hint="Raise --sla-minutes or lower "
                          "--task-timeout-minutes.")
    materialize = [j for j in settings.jobs if j.kind == "materialize"]
    predict = [j for j in settings.jobs if j.kind == "batch_predict"]
    if not predict:
        raise ConfigError(f"Project {settings.project!r} has no batch_predict job to schedule.",
                          hint="Add one under `jobs:` in shipyard.yaml (kind: batch_predict).")
    tasks: list[TaskSpec] = []
    if materialize:
        tasks += [TaskSpec(_task_id(j), ["jobs", "run", j.name], (), retries,
                           task_timeout_minutes) for j in materialize]
    else:  # no materialize job: bring every online view up to the run's logical end
        tasks.append(TaskSpec("materialize_incremental",
                              ["materialize-incremental", "{{ data_interval_end.isoformat() }}"],
                              (), retries, task_timeout_minutes))
    first = tuple(t.task_id for t in tasks)
    tasks += [TaskSpec(_task_id(j), ["jobs", "run", j.name], first, retries,
                       task_timeout_minutes) for j in predict]
    if monitor and settings.monitoring.alerts:  # `monitor run` needs alert rules
        tasks.append(TaskSpec("monitor", ["monitor", "run", "--at",
                                          "{{ data_interval_end.isoformat() }}"],
                              tuple(_task_id(j) for j in predict), retries, task_timeout_minutes))
    crons = sorted({j.cron for j in predict if j.cron})
    if schedule is None and len(crons) > 1:
        raise ConfigError(f"The batch jobs run on different schedules ({', '.join(crons)}).",
                          hint="Pass --schedule for the DAG, or export one DAG per schedule.")
    return DagSpec(dag_id, schedule or (crons[0] if crons else None), tasks, sla_minutes,
                   retry_delay_minutes, project_dir, shipyard_bin, dict(env or {}))


def dag_source(spec: DagSpec) -> str:
    """The Python source of a DAG file for `spec` (it imports Airflow, not Shipyard)."""
    tasks = [{"task_id": t.task_id,
              "bash_command": " ".join([shlex.quote(spec.shipyard_bin),
                                        *(_quote(arg) for arg in t.command)]),
              "upstream": list(t.upstream), "retries": t.retries,
              "timeout_minutes": t.timeout_minutes} for t in spec.tasks]
    env = {"SHIPYARD_PROJECT_DIR": spec.project_dir, **spec.env}
    return _TEMPLATE.format(dag_id=spec.dag_id, schedule=repr(spec.schedule),
                            sla=spec.sla_minutes, retry_delay=spec.retry_delay_minutes,
                            tags=repr(list(spec.tags)), env=_literal(env),
                            tasks=_literal(tasks))


def write_dag(spec: DagSpec, folder: Path) -> Path:
    """Write the DAG file `<dag_id>.py` into `folder` (atomically) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.dag_id.replace('-', '_').replace('.', '_')}.py"
    tmp = path.with_suffix(".py.tmp")
    tmp.write_text(dag_source(spec))
    tmp.replace(path)
    return path


def _quote(arg: str) -> str:
    """Shell-quote an argument but keep a Jinja template intact (Airflow renders it first)."""
    return f'"{arg}"' if arg.startswith("{{") else shlex.quote(arg)


def _literal(value: object) -> str:
    return pprint.pformat(value, width=96, sort_dicts=False)


_TEMPLATE = '''"""Shipyard pipeline {dag_id}: written by `shipyard airflow export`; edit shipyard.yaml
and export again rather than editing this file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
    AIRFLOW_2 = False
except ImportError:  # Airflow 2.7+
    from airflow import DAG
    from airflow.operators.bash import BashOperator
    AIRFLOW_2 = True

SLA = timedelta(minutes={sla})
ENV = {env}
TASKS = {tasks}

with DAG(
    dag_id="{dag_id}",
    schedule={schedule},
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=SLA,
    tags={tags},
    default_args={{"retries": 2, "retry_delay": timedelta(minutes={retry_delay}),
                  "retry_exponential_backoff": True}},
) as dag:
    operators = {{}}
    for task in TASKS:
        options = {{"sla": SLA}} if AIRFLOW_2 else {{}}
        operators[task["task_id"]] = BashOperator(
            task_id=task["task_id"],
            bash_command=task["bash_command"],
            env=ENV,
            append_env=True,
            retries=task["retries"],
            execution_timeout=timedelta(minutes=task["timeout_minutes"]),
            **options,
        )
    for task in TASKS:
        for upstream in task["upstream"]:
            operators[upstream] >> operators[task["task_id"]]
'''
