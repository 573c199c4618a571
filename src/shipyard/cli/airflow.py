"""`shipyard airflow export`: an Airflow DAG file for the jobs of shipyard.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._common import ProjectOption, console, open_project

app = typer.Typer(help="Airflow: export the project's jobs as a DAG.", no_args_is_help=True)


@app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The DAG folder to write into.")] = Path(
        "dags"),
    dag_id: Annotated[str | None, typer.Option(help="Default: shipyard_<project>.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Cron or preset (@daily); default: the "
                                                      "batch jobs' cron.")] = None,
    retries: Annotated[int, typer.Option(help="Retries per task.")] = 2,
    retry_delay_minutes: Annotated[int, typer.Option(help="First delay between retries.")] = 5,
    sla_minutes: Annotated[int, typer.Option(help="The whole run must finish within this.")] = 120,
    task_timeout_minutes: Annotated[int, typer.Option(help="Each try of a task must finish "
                                                           "within this.")] = 60,
    project_dir: Annotated[str | None, typer.Option(help="The project folder on the Airflow "
                                                         "workers (default: this one).")] = None,
    shipyard_bin: Annotated[str, typer.Option(help="The shipyard command on the workers.")] = (
        "shipyard"),
    monitor: Annotated[bool, typer.Option("--monitor/--no-monitor", help="End with `shipyard "
                                          "monitor run`.")] = True,
    project: ProjectOption = Path("."),
) -> None:
    """Write a DAG file: materialize -> batch predict -> monitor, with retries and an SLA."""
    from shipyard.integrations.airflow import build_dag_spec, write_dag

    with open_project(project) as proj:
        spec = build_dag_spec(proj.settings, project_dir=project_dir or str(proj.root),
                              dag_id=dag_id, schedule=schedule, retries=retries,
                              retry_delay_minutes=retry_delay_minutes, sla_minutes=sla_minutes,
                              task_timeout_minutes=task_timeout_minutes,
                              shipyard_bin=shipyard_bin, monitor=monitor)
    path = write_dag(spec, out)
    if monitor and not any(t.task_id == "monitor" for t in spec.tasks):
        console.print("[yellow]note:[/yellow] no `monitoring.alerts` in shipyard.yaml, so the DAG "
                      "has no monitor task.", highlight=False)
    chain = " -> ".join(t.task_id for t in spec.tasks)
    console.print(f"[green]✓[/green] DAG {spec.dag_id} ({spec.schedule or 'manual'}): {chain} "
                  f"-> {path}", highlight=False, soft_wrap=True)
