"""`shipyard demo`: the fraud walkthrough, stage by stage, on the embedded defaults."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shipyard.cli import batch, experiment, monitor, serve_models, train
from shipyard.cli._common import console
from shipyard.cli.apply import print_plan
from shipyard.core.time import utc_now
from shipyard.examples.fraud import features as fraud_features
from shipyard.examples.fraud.generate import generate
from shipyard.project import Project

Stage = Callable[[Project, dict[str, Any]], str]


def _stage_data(project: Project, state: dict[str, Any]) -> str:
    # the history ends at the last full hour, so that online values are fresh (within ttl)
    end = state.setdefault("end", utc_now().replace(minute=0, second=0, microsecond=0))
    paths = generate(project.root / "data", customers=state["customers"], days=state["days"],
                     end=end)
    state["paths"] = paths
    sizes = {name: len(pd.read_parquet(path, columns=[])) for name, path in paths.items()}
    return ", ".join(f"{name}: {rows:,} rows" for name, rows in sizes.items())


def _stage_apply(project: Project, state: dict[str, Any]) -> str:
    plan = project.apply()
    state["plan"] = plan
    return f"definitions version {plan.version} ({len(plan.changes)} changes)"


def _stage_training_set(project: Project, state: dict[str, Any]) -> str:
    labels = pd.read_parquet(state["paths"]["labels"])
    started = time.perf_counter()
    frame = project.features.get_historical_features(labels, feature_service="fraud_v2")
    elapsed = time.perf_counter() - started
    out = project.root / "training_set.parquet"
    frame.to_parquet(out, index=False)
    state["training_set"] = frame
    return f"{len(frame):,} rows x {frame.shape[1]} columns in {elapsed:.2f} s -> {out.name}"


def _stage_materialize(project: Project, state: dict[str, Any]) -> str:
    started = time.perf_counter()
    results = project.features.materialize(None, utc_now())
    elapsed = time.perf_counter() - started
    rows = sum(r.rows for r in results)
    return (f"{rows:,} keys of {len(results)} views in {elapsed:.2f} s "
            f"({rows / elapsed:,.0f} rows/s)")


def _stage_online_reads(project: Project, state: dict[str, Any]) -> str:
    recent = pd.read_parquet(state["paths"]["labels"]).tail(3)
    rows = recent[["customer_id", "merchant_id", "amount"]].to_dict("records")
    state["online"] = project.features.get_online_features(feature_service="fraud_v2",
                                                           entity_rows=rows)
    one = rows[:1]
    timings = []
    for _ in range(2_000):
        started = time.perf_counter()
        project.features.get_online_features(feature_service="fraud_v2", entity_rows=one)
        timings.append(time.perf_counter() - started)
    timings.sort()
    p50, p99 = timings[len(timings) // 2] * 1e6, timings[int(len(timings) * 0.99)] * 1e6
    return (f"{len(rows)} transactions scored with fraud_v2; one entity takes "
            f"p50 {p50:.0f} µs, p99 {p99:.0f} µs")


def _stage_push(project: Project, state: dict[str, Any]) -> str:
    customer = int(state["online"]["customer_id"][0])
    refs = [f"customer_stats:{f}" for f in fraud_features.customer_stats.feature_names]
    before = project.features.get_online_features(features=refs,
                                                  entity_rows=[{"customer_id": customer}])
    fresh = {name: values[0] for name, values in before.items()}
    fresh["txn_count_24h"] = (fresh["txn_count_24h"] or 0) + 1
    fresh["amount_sum_24h"] = (fresh["amount_sum_24h"] or 0.0) + 250.0
    fresh["event_timestamp"] = utc_now()
    project.features.push("customer_stats_push", pd.DataFrame([fresh]))
    after = project.features.get_online_features(features=refs[:2],
                                                 entity_rows=[{"customer_id": customer}])
    return (f"customer {customer}: txn_count_24h {before['txn_count_24h'][0]} -> "
            f"{after['txn_count_24h'][0]}, amount_sum_24h {before['amount_sum_24h'][0]:.2f} -> "
            f"{after['amount_sum_24h'][0]:.2f}")


def _stage_skew(project: Project, state: dict[str, Any]) -> str:
    report = project.features.check_skew(sample=200)
    state["skew"] = report
    return (f"{len(report.mismatches)} mismatches in {report.values_compared:,} values of "
            f"{report.entities} entities")


STAGES: list[tuple[str, Stage]] = [
    ("Generate 60 days of card transactions", _stage_data),
    ("Apply the feature definitions", _stage_apply),
    ("Build a point-in-time correct training set", _stage_training_set),
    ("Materialize the latest features into the online store", _stage_materialize),
    ("Read online features for live transactions", _stage_online_reads),
    ("Push a fresh event for one customer", _stage_push),
    ("Check online against offline (skew)", _stage_skew),
    ("Train the fraud model on fraud_v1", train.stage_fit_v1),
    ("Train the fraud model on fraud_v2 (merchant and amount features)", train.stage_fit_v2),
    ("Promote the better version to fraud@champion", train.stage_champion),
    ("Serve fraud@champion over HTTP (shipyard serve)", serve_models.stage_serve),
    ("Score every customer overnight (batch prediction)", batch.stage_nightly_scoring),
    ("A/B test fraud v2 against v1 on live traffic, promote the winner",
     experiment.stage_ab_test),
    ("Monitor a simulated week: shift, late labels, alerts, report", monitor.stage_monitor_week),
]


def build_project(workdir: Path) -> Project:
    """Lay out the demo project in `workdir` (definitions and shipyard.yaml) and load it."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.copy(fraud_features.__file__, workdir / "features.py")
    (workdir / "shipyard.yaml").write_text("project: fraud\n")
    return Project.load(workdir)


def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Work folder (recreated).")] = Path(
        "shipyard-demo"),
    customers: Annotated[int, typer.Option(help="Customers to simulate.")] = 2_000,
    days: Annotated[int, typer.Option(help="Days of history to simulate.")] = 60,
) -> None:
    """Run the end-to-end fraud demo on the embedded defaults."""
    state: dict[str, Any] = {"customers": customers, "days": days}
    with build_project(workdir) as project:
        console.print(f"[bold]Shipyard demo[/bold] in {project.root}")
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                            TimeElapsedColumn(), console=console, transient=True)
        with progress:
            for title, stage in STAGES:
                task = progress.add_task(title, total=None)
                summary = stage(project, state)
                progress.remove_task(task)
                console.print(f"[green]✓[/green] {title}: {summary}", highlight=False)
        print_plan(state["plan"])
        _show_training_set(state["training_set"])
        _show_online(state["online"])


def _show_training_set(frame: pd.DataFrame) -> None:
    table = Table(title="Training set (first rows)")
    columns = ["customer_id", "event_timestamp", "amount", "txn_count_24h", "amount_mean_7d",
               "fraud_rate_30d", "amount_vs_customer_mean", "is_fraud"]
    for column in columns:
        table.add_column(column)
    for row in frame[columns].head(5).itertuples(index=False):
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    missing = frame["amount_mean_7d"].isna().mean()
    console.print(f"Fraud rate {frame['is_fraud'].mean():.2%}; rows without customer history "
                  f"in the ttl window {missing:.1%} (kept, with nulls).")


def _show_online(columns: dict[str, list[Any]]) -> None:
    names = ["customer_id", "merchant_id", "txn_count_24h", "amount_mean_7d", "fraud_rate_30d",
             "amount_vs_customer_mean", "amount_zscore"]
    table = Table(*names, title="Online features (fraud_v2, as served)")
    for i in range(len(columns["customer_id"])):
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v)
                        for v in (columns[n][i] for n in names)))
    console.print(table)
