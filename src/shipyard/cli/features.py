"""`shipyard materialize`, `materialize-incremental` and `shipyard features get|check-skew`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.core.errors import InvalidInputError
from shipyard.core.time import to_utc, utc_now
from shipyard.features.materialize import MaterializedView

app = typer.Typer(help="Online features: read them, check them against offline.",
                  no_args_is_help=True)

ViewsOption = Annotated[str | None, typer.Option("--views", help="Comma-separated view names "
                                                 "(default: every online view).")]
FeatureOption = Annotated[list[str] | None, typer.Option("--feature", "-f",
                                                         help="A 'view:feature' reference; "
                                                              "repeat for more.")]
ServiceOption = Annotated[str | None, typer.Option("--feature-service", "-s",
                                                   help="A feature service instead of features.")]


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp (naive means UTC), or 'now'."""
    return utc_now() if text.strip().lower() == "now" else to_utc(text)


def parse_value(text: str) -> Any:
    """A command-line value: int, then float, else the string; quote it to keep a string."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_entity(text: str) -> dict[str, Any]:
    """`customer_id=1,amount=12.5` as {'customer_id': 1, 'amount': 12.5}."""
    row = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise InvalidInputError(f"Entity {text!r} is not of the form key=value[,key=value].",
                                    hint="e.g. --entity customer_id=1,amount=12.5")
        row[name.strip()] = parse_value(value.strip())
    return row


def _views(text: str | None) -> list[str] | None:
    return None if text is None else [v.strip() for v in text.split(",") if v.strip()]


@contextmanager
def _progress_bar() -> Iterator[Any]:
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    tasks: dict[str, Any] = {}

    def update(view: str, done: int, total: int) -> None:
        if view not in tasks:
            tasks[view] = progress.add_task(view, total=total)
        progress.update(tasks[view], completed=done, total=total)

    with progress:
        yield update


def _summary(results: list[MaterializedView]) -> None:
    for r in results:
        since = "the beginning" if r.start is None else r.start.isoformat()
        console.print(f"[green]✓[/green] {r.view}: {r.rows:,} keys from {since} to "
                      f"{r.end.isoformat()} ({r.written:,} written, older ones skipped)",
                      highlight=False)


def materialize(start: Annotated[str, typer.Argument(help="ISO timestamp or 'now'.")],
                end: Annotated[str, typer.Argument(help="ISO timestamp or 'now'.")],
                views: ViewsOption = None, project: ProjectOption = Path(".")) -> None:
    """Load the latest offline rows with START <= ts <= END into the online store."""
    with open_project(project) as proj, _progress_bar() as progress:
        results = proj.features.materialize(parse_time(start), parse_time(end),
                                            views=_views(views), progress=progress)
    _summary(results)


def materialize_incremental(end: Annotated[str, typer.Argument(help="ISO timestamp or 'now'.")],
                            views: ViewsOption = None,
                            project: ProjectOption = Path(".")) -> None:
    """Materialize each view from where the last incremental run stopped up to END."""
    with open_project(project) as proj, _progress_bar() as progress:
        results = proj.features.materialize_incremental(parse_time(end), views=_views(views),
                                                        progress=progress)
    _summary(results)


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]null[/dim]"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@app.command("get")
def get(entity: Annotated[list[str], typer.Option("--entity", "-e",
                                                  help="key=value[,key=value]; one per entity "
                                                       "row, request data included.")],
        feature: FeatureOption = None, feature_service: ServiceOption = None,
        full_feature_names: Annotated[bool, typer.Option("--full-feature-names")] = False,
        project: ProjectOption = Path(".")) -> None:
    """Read online feature values and print them as a table."""
    rows = [parse_entity(e) for e in entity]
    with open_project(project) as proj:
        columns = proj.features.get_online_features(
            features=feature or None, feature_service=feature_service, entity_rows=rows,
            full_feature_names=full_feature_names)
    table = Table(*columns)
    for i in range(len(rows)):
        table.add_row(*(_cell(values[i]) for values in columns.values()))
    console.print(table)


@app.command("check-skew")
def check_skew(sample: Annotated[int, typer.Option(help="Entities to sample per view.")] = 100,
               feature: FeatureOption = None, feature_service: ServiceOption = None,
               project: ProjectOption = Path(".")) -> None:
    """Compare online values with offline point-in-time values for now; exit 1 on skew."""
    with open_project(project) as proj:
        report = proj.features.check_skew(sample=sample, features=feature or None,
                                          feature_service=feature_service)
    print_skew(report)
    if not report.is_consistent:
        raise typer.Exit(1)


def print_skew(report: Any) -> None:
    """A per-feature table of a SkewReport, then its first mismatches."""
    table = Table("feature", "mismatches", title=f"Skew check at {report.at.isoformat()}: "
                  f"{report.entities} entities, {report.values_compared} values")
    for name, count in report.mismatches_by_feature().items():
        table.add_row(name, f"[red]{count}[/red]" if count else "[green]0[/green]")
    console.print(table)
    for m in report.mismatches[:10]:
        console.print(f"  {m.feature} {m.entity}: online {m.online!r} != offline {m.offline!r}",
                      highlight=False)
