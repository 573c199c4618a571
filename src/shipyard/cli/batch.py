"""`shipyard batch-predict`, `shipyard jobs list|run` and `shipyard scheduler`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.core.errors import InvalidInputError
from shipyard.core.time import utc_now
from shipyard.project import Project

app = typer.Typer(help="Scheduled jobs (`jobs:` in shipyard.yaml): list them, run one now.",
                  no_args_is_help=True)


@contextmanager
def _rows_bar(title: str) -> Iterator[Callable[[int, int], None]]:
    progress = Progress(TextColumn(title), BarColumn(), MofNCompleteColumn(),
                        TextColumn("rows"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, transient=True)
    task = progress.add_task(title, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        yield update


def batch_predict(
    model: Annotated[str, typer.Argument(help="'fraud@champion', 'fraud/3' or 'fraud'.")],
    entities: Annotated[Path, typer.Argument(help="A Parquet file or folder of entity rows.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The output folder.")],
    engine: Annotated[str, typer.Option(help="'local' (a process per core) or 'spark'.")] = "local",
    features_at: Annotated[str, typer.Option(help="'row' (each row's timestamp), 'now' or an "
                                                  "ISO time for every row.")] = "row",
    run_id: Annotated[str | None, typer.Option(help="Name the run; rerun with it to finish an "
                                                    "interrupted one.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the output.")] = False,
    chunk_rows: Annotated[int, typer.Option(help="Rows per partition.")] = 100_000,
    keep: Annotated[list[str] | None, typer.Option("--keep", help="An input column to copy to "
                                                   "the output; repeat for more.")] = None,
    timestamp_column: Annotated[str | None, typer.Option(help="The input's timestamp column "
                                                         "(default: event_timestamp).")] = None,
    workers: Annotated[int | None, typer.Option(help="Local engine: worker processes "
                                                     "(default: one per core).")] = None,
    project: ProjectOption = Path("."),
) -> None:
    """Score every entity row with a model and write Parquet predictions."""
    with open_project(project) as proj, _rows_bar(f"Scoring with {model}") as progress:
        if workers is not None:
            if engine != "local":
                raise InvalidInputError(f"--workers sets the local engine's processes, not "
                                        f"{engine!r}'s.", hint="Drop --workers, or set Spark's "
                                        "cores with `spark: {master: 'local[N]'}` in shipyard.yaml.")
            proj.batch.configure_engine("local", workers=workers)
        result = proj.batch.predict(model, entities, output=output, engine=engine,
                                    features_at=features_at, run_id=run_id, overwrite=overwrite,
                                    chunk_rows=chunk_rows, keep_columns=keep or (),
                                    timestamp_column=timestamp_column, progress=progress)
    resumed = (f"; {result.skipped_partitions} partition(s) were done already"
               if result.skipped_partitions else "")
    console.print(f"[green]✓[/green] {result.rows:,} rows scored by {result.model} on "
                  f"{result.engine} in {result.seconds:.1f} s ({result.rows_per_second:,.0f} "
                  f"rows/s) -> {result.output} ({result.partitions} partitions{resumed}); "
                  f"run id {result.run_id}", highlight=False, soft_wrap=True)


@app.command("list")
def list_jobs(project: ProjectOption = Path(".")) -> None:
    """List the jobs of shipyard.yaml with their schedule and last run."""
    now = utc_now()
    with open_project(project) as proj:
        jobs = proj.batch.list_jobs()
        last = {j.name: next(iter(proj.batch.list_runs(job=j.name, limit=1)), None) for j in jobs}
    table = Table("job", "kind", "what", "cron (UTC)", "next run", "engine", "last run",
                  title=f"{len(jobs)} job(s)")
    for job in jobs:
        what = (f"{job.model}: {job.input} -> {job.output}" if job.kind == "batch_predict"
                else ", ".join(job.options.get("views") or ["every online view"]))
        upcoming = job.next_tick(now)
        run = last[job.name]
        ran = "never" if run is None else f"{run.status} {run.started_at:%Y-%m-%d %H:%M}"
        table.add_row(job.name, job.kind, what, job.cron or "manual",
                      "-" if upcoming is None else f"{upcoming:%Y-%m-%d %H:%M}", job.engine, ran)
    console.print(table)


@app.command("run")
def run_job(name: Annotated[str, typer.Argument(help="The job's name.")],
            project: ProjectOption = Path(".")) -> None:
    """Run a job now (waits for no schedule; refuses if it is running elsewhere)."""
    with open_project(project) as proj, _rows_bar(f"Running {name}") as progress:
        run = proj.batch.run_job(name, progress=progress)
    console.print(f"[green]✓[/green] job {name}: {run.status}, {run.row_count or 0:,} rows in "
                  f"{run.duration_seconds or 0:.1f} s (run id {run.id})", highlight=False)


def scheduler(
    once: Annotated[bool, typer.Option("--once", help="Run the jobs due now, then exit.")] = False,
    poll_seconds: Annotated[float, typer.Option(help="Seconds between checks.")] = 30.0,
    project: ProjectOption = Path("."),
) -> None:
    """Run jobs on their cron schedules; any number of schedulers may share one database."""
    from shipyard.batch import Outcome, Scheduler

    def report(outcome: Outcome) -> None:
        if outcome.run is not None:
            console.print(f"[green]✓[/green] {outcome.job} ({outcome.due:%Y-%m-%d %H:%M}): "
                          f"{outcome.run.status}, {outcome.run.row_count or 0:,} rows, run id "
                          f"{outcome.run.id}", highlight=False)
        else:
            console.print(f"[red]✗[/red] {outcome.job} ({outcome.due:%Y-%m-%d %H:%M}): "
                          f"{outcome.error}", highlight=False)

    with open_project(project) as proj:
        runner = Scheduler(proj.batch)
        if once:
            outcomes = runner.run_pending()
            for outcome in outcomes:
                report(outcome)
            console.print(f"{len(outcomes)} job(s) run.")
            return
        console.print(f"Scheduler {runner.leases.holder} watching "
                      f"{len(proj.batch.list_jobs())} job(s); Ctrl-C stops it.")
        try:
            runner.run_forever(poll_seconds=poll_seconds, on_outcome=report)
        except KeyboardInterrupt:
            console.print("Stopped.")


def stage_nightly_scoring(project: Project, state: dict[str, Any]) -> str:
    """Demo stage: score every customer's latest transaction with the features of tonight."""
    labels = pd.read_parquet(state["paths"]["labels"])
    latest = labels.sort_values("event_timestamp").groupby("customer_id").tail(1)
    at = state["end"]
    out = project.root / "scores" / f"{at:%Y-%m-%d}"
    result = project.batch.predict("fraud@champion", latest[["customer_id", "merchant_id",
                                                             "amount"]],
                                   output=out, features_at=at, keep_columns=["amount"],
                                   overwrite=True)
    scores = pd.read_parquet(out)
    size = sum(f.stat().st_size for f in out.glob("*.parquet"))
    risk = next((c for c in scores.columns if c == "proba_1"), "prediction")
    table = Table("customer_id", "merchant_id", "amount", "features at", risk,
                  title=f"Nightly scores, riskiest first ({result.model}, run {result.run_id})")
    for row in scores.sort_values(risk, ascending=False).head(5).itertuples(index=False):
        table.add_row(str(row.customer_id), str(row.merchant_id), f"{row.amount:.2f}",
                      f"{row.event_timestamp:%Y-%m-%d %H:%M}", f"{getattr(row, risk):.4f}")
    console.print(table)
    return (f"{result.rows:,} customers scored by {result.model} as of {at:%Y-%m-%d %H:%M} UTC "
            f"in {result.seconds:.2f} s -> {out.relative_to(project.root)} "
            f"({result.partitions} file(s), {size / 1024:,.0f} kB)")
