"""`shipyard runs list|show|compare`: experiment runs in rich tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.tracking import RunInfo

app = typer.Typer(help="Experiment runs: list, show and compare.", no_args_is_help=True)

STATUS_STYLE = {"running": "yellow", "finished": "green", "failed": "red"}
_MAX_METRIC_COLUMNS = 5


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


@app.command("list")
def list_runs(
    experiment: Annotated[str | None, typer.Option("--experiment", "-e",
                                                   help="Only this experiment.")] = None,
    filter: Annotated[str | None, typer.Option(
        "--filter", "-f", help="e.g. \"metrics.auc > 0.8 and params.model = 'lgbm'\".")] = None,
    order_by: Annotated[str, typer.Option("--order-by", "-o",
                                          help="e.g. 'metrics.auc desc'.")] = "start_time desc",
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 50,
    project: ProjectOption = Path("."),
) -> None:
    """List runs, newest first (or as --order-by says), filtered by --filter."""
    with open_project(project) as proj:
        found = proj.tracking.list_runs(experiment=experiment, filter=filter, order_by=order_by,
                                        limit=limit)
    metrics = list(dict.fromkeys(k for r in found for k in r.metrics))[:_MAX_METRIC_COLUMNS]
    table = Table("id", "experiment", "name", "status", "started (UTC)", "duration",
                  *metrics, title=f"{len(found)} run(s)")
    for run in found:
        duration = run.duration_seconds
        table.add_row(run.id[:8], run.experiment, run.name, _status(run.status),
                      _when(run.start_time), "" if duration is None else f"{duration:.1f}s",
                      *(_number(run.metrics.get(m)) for m in metrics))
    console.print(table)


def _pairs(title: str, values: dict[str, Any]) -> Table:
    table = Table("key", "value", title=title, title_justify="left")
    for key, value in sorted(values.items()):
        table.add_row(key, _number(value))
    return table


def print_run(run: RunInfo) -> None:
    """A run's attributes, params, metrics, tags and artifacts."""
    git = "" if run.git_commit is None else run.git_commit[:12] + (" (dirty)" if run.git_dirty
                                                                  else "")
    console.print(_pairs(f"run {run.id}", {
        "experiment": run.experiment, "name": run.name, "status": run.status,
        "started": _when(run.start_time), "ended": _when(run.end_time),
        "git commit": git, "python": run.environment.get("python"),
        "created by": run.created_by}))
    for title, values in (("params", run.params), ("metrics (latest)", run.metrics),
                          ("tags", run.tags)):
        if values:
            console.print(_pairs(title, values))
    if run.artifacts:
        table = Table("name", "kind", "size", "sha256", title="artifacts", title_justify="left")
        for ref in run.artifacts.values():
            table.add_row(ref.name, ref.kind, str(ref.size), ref.sha256[:12])
        console.print(table)
    packages = run.environment.get("packages", {})
    if packages:
        console.print(_pairs("packages", packages))


@app.command("show")
def show(run_id: Annotated[str, typer.Argument(help="A run id (or 6+ first characters).")],
         project: ProjectOption = Path(".")) -> None:
    """Show one run: attributes, params, metrics, tags, artifacts, environment."""
    with open_project(project) as proj:
        print_run(proj.tracking.get_run(run_id))


@app.command("compare")
def compare(run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
            project: ProjectOption = Path(".")) -> None:
    """Show runs side by side; rows whose values differ are highlighted."""
    with open_project(project) as proj:
        frame = proj.tracking.compare_runs(run_ids)
    table = Table("", *frame.columns, title="runs compared")
    for key, row in frame.iterrows():
        cells = ["" if v is None or v != v else _number(v) for v in row.tolist()]
        style = "bold yellow" if len(set(cells)) > 1 else None
        table.add_row(str(key), *cells, style=style)
    console.print(table)
