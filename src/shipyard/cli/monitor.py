"""`shipyard monitor run|report|labels`, and the demo's simulated week of monitored traffic."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.core.errors import InvalidInputError
from shipyard.core.time import to_utc

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.monitoring.alerts import AlertRun
    from shipyard.project import Project

app = typer.Typer(help="Monitoring: evaluate alert rules, write reports, log labels.",
                  no_args_is_help=True)

ModelOption = Annotated[str | None, typer.Option(
    "--model", "-m", help="The model, e.g. 'fraud' or 'fraud@champion' (default: monitoring.model).")]


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return to_utc(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{option} {value!r} is not a time.",
                                hint="Use ISO 8601, e.g. 2026-11-01 or 2026-11-01T06:00Z.") from exc


def _print_run(run: AlertRun) -> None:
    table = Table("rule", "model", "column", "value", "threshold", "state",
                  title=f"Alert rules at {run.at:%Y-%m-%d %H:%M} UTC")
    for v in run.verdicts:
        if not v.is_firing and v.value is None:
            continue
        table.add_row(v.rule.rule_name, v.model, v.column,
                      "-" if v.value is None else f"{v.value:.4g}",
                      "-" if v.threshold is None else f"{v.threshold:.4g}",
                      "[red]FIRING[/red]" if v.is_firing else "ok")
    console.print(table)
    for event in run.events:
        hook = f" (webhook: {event.webhook_status})" if event.webhook_status else ""
        console.print(f"{event.message}{hook}", highlight=False, markup=False)
    console.print(f"{len(run.firing)} condition(s) firing, {len(run.events)} new event(s).")


@app.command("run")
def run(
    project: ProjectOption = Path("."),
    at: Annotated[str | None, typer.Option(
        "--at", help="Evaluate the windows ending at this time (default: the current hour).")] = None,
    metrics_file: Annotated[Path | None, typer.Option(
        "--metrics-file", help="Also write the values as Prometheus gauges to this file "
                               "(node_exporter textfile format).")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Serve the gauges at http://HOST:PORT/metrics (with --every).")] = None,
    metrics_host: Annotated[str, typer.Option("--metrics-host")] = "127.0.0.1",
    every: Annotated[float | None, typer.Option(
        "--every", help="Keep running: evaluate again every this many seconds.", min=1)] = None,
    fail_on_alert: Annotated[bool, typer.Option(
        "--fail-on-alert", help="Exit with code 3 while any condition fires.")] = False,
) -> None:
    """Evaluate the alert rules of shipyard.yaml; store events, post webhooks, export gauges."""
    from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile

    from shipyard.monitoring.gauges import MonitoringGauges

    moment = _time(at, "--at")
    if metrics_port is not None and every is None:
        raise InvalidInputError("--metrics-port needs --every (a one-off run exits at once).",
                                hint="Add --every 300, or use --metrics-file.")
    registry = CollectorRegistry()
    gauges = MonitoringGauges().register(registry)
    with open_project(project) as proj:
        if not proj.settings.monitoring.alerts:
            raise InvalidInputError("No alert rules: monitoring.alerts in shipyard.yaml is empty.",
                                    hint="Add rules such as {metric: drift, column: '*', window: 1d}.")
        if metrics_port is not None:
            start_http_server(metrics_port, addr=metrics_host, registry=registry)
            console.print(f"gauges at http://{metrics_host}:{metrics_port}/metrics")
        while True:
            result = proj.monitoring.run_alerts(at=moment, gauges=gauges)
            _print_run(result)
            if metrics_file is not None:
                write_to_textfile(str(metrics_file), registry)
                console.print(f"gauges -> {metrics_file}")
            if every is None:
                break
            time.sleep(every)
    if fail_on_alert and result.firing:
        raise typer.Exit(3)


@app.command("report")
def report(
    project: ProjectOption = Path("."),
    model: ModelOption = None,
    start: Annotated[str, typer.Option("--from", help="Start of the period (UTC, ISO 8601).")] = "",
    end: Annotated[str, typer.Option("--to", help="End of the period (UTC, ISO 8601).")] = "",
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "report.html"),
    step: Annotated[str, typer.Option(help="One point per window of this size: 1h, 6h, 1d.")] = "1d",
) -> None:
    """Write a self-contained HTML report: drift, performance, quality, distributions, alerts."""
    if not start or not end:
        raise InvalidInputError("Give the period with --from and --to.",
                                hint="e.g. --from 2026-11-01 --to 2026-11-08")
    lo, hi = _time(start, "--from"), _time(end, "--to")
    with open_project(project) as proj:
        path = proj.monitoring.report(model, start=lo, end=hi, out=out, step=step)  # type: ignore[arg-type]
    console.print(f"report -> {path} ({path.stat().st_size / 1e6:.1f} MB, no network needed)")


@app.command("labels")
def labels(
    path: Annotated[Path, typer.Argument(help="A Parquet or CSV file of labels.")],
    project: ProjectOption = Path("."),
    label: Annotated[str, typer.Option(help="The label column.")] = "label",
    keys: Annotated[str | None, typer.Option(
        help="Comma-separated entity key columns (with --timestamp) instead of request_id.")] = None,
    timestamp: Annotated[str, typer.Option(help="The prediction-time column (with --keys).")
                         ] = "timestamp",
) -> None:
    """Log labels from a file (by request_id, or by entity keys + timestamp)."""
    import pandas as pd

    if not path.exists():
        raise InvalidInputError(f"No file {str(path)!r}.", hint="Give a Parquet or CSV file.")
    frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    with open_project(project) as proj:
        count = proj.monitoring.log_labels(
            frame, label=label, keys=[k.strip() for k in keys.split(",")] if keys else None,
            timestamp=timestamp)
    console.print(f"{count:,} labels logged.")


# -- demo stage (shipyard demo) ------------------------------------------------------------

WEEK_OFFSET = timedelta(days=17)
"""The simulated week starts 17 days before the data ends: 3 quiet days, then the shift."""
DAY = timedelta(days=1)
_DEMO_RULES = """
monitoring:
  model: fraud@champion
  reference_start: "{warm}"  # the generator's first week is a warm-up: 7-day windows fill up
  webhook_url: {webhook}
  alerts:
    - {{metric: drift, column: "*", window: 1d, severity: warning, min_rows: 500}}
    - {{metric: share_drifted, window: 1d, threshold: 0.25, severity: critical, min_rows: 500}}
    - {{metric: missing_share, column: "*", window: 1d, threshold: 0.2}}
    - {{metric: estimated_auc, window: 1d, threshold: 0.85, min_rows: 500}}
    - {{metric: log_loss, window: 7d, min_rows: 500, severity: critical}}
"""


class _Inbox:
    """A webhook receiver on loopback for the demo: counts the JSON events posted to it."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _week_traffic(project: Project, state: dict[str, Any], start: datetime
                  ) -> tuple[pd.DataFrame, str]:
    """The week's transactions with the champion's inputs, as the server would have seen them."""
    import pandas as pd

    version = project.models.get_version("fraud@champion")
    if version.dataset_id is None:
        raise InvalidInputError("fraud@champion has no training dataset.",
                                hint="Run the demo's training stages first.")
    frame = project.training.get_dataset(version.dataset_id).to_pandas()
    labels = pd.read_parquet(state["paths"]["labels"],
                             columns=["customer_id", "merchant_id", "event_timestamp",
                                      "label_timestamp"])
    if "label_timestamp" not in frame.columns:
        frame = frame.merge(labels.drop_duplicates(["customer_id", "merchant_id",
                                                    "event_timestamp"]),
                            on=["customer_id", "merchant_id", "event_timestamp"], how="left")
    stamps = frame["event_timestamp"]
    week = frame[(stamps >= pd.Timestamp(start)) & (stamps < pd.Timestamp(start + 7 * DAY))]
    return week.sort_values("event_timestamp", kind="stable").reset_index(drop=True), version.ref


def _log_week(project: Project, week: pd.DataFrame, ref: str) -> None:
    """Score the week with the champion and write it to the prediction log, hour by hour."""
    import numpy as np

    from shipyard.predictions import PredictionBatch

    model = project.models.load(ref)
    inputs = week[model.input_columns]
    proba = model.predict_proba(inputs)
    predicted = (proba[:, -1] >= 0.5).astype(int)
    stamps = week["event_timestamp"].astype("datetime64[us, UTC]").astype("int64").to_numpy()
    extra = [c for c in ("customer_id", "merchant_id") if c not in model.input_columns]
    # Python values with None for missing, as the server logs them
    columns = {name: week[name].astype(object).where(week[name].notna(), None).tolist()
               for name in [*extra, *model.input_columns]}
    hours = stamps // 3_600_000_000
    writer = project.predictions.open_writer()
    try:
        for hour in np.unique(hours):
            rows = np.flatnonzero(hours == hour)
            writer.append(PredictionBatch(
                model.name, model.version.version, [f"sim-{i}" for i in rows],
                stamps[rows].tolist(), {k: [v[i] for i in rows] for k, v in columns.items()},
                predicted[rows].tolist(), proba[rows].tolist()))
    finally:
        writer.close()
    project.predictions.compact()


def _deliver_labels(project: Project, week: pd.DataFrame, lo: datetime, hi: datetime) -> int:
    """Labels that arrived in (lo, hi]: clean ones by request id, chargebacks by card and time.

    A tenth of them is sent twice (a retry): the log keeps one, the newest.
    """
    import pandas as pd

    arrived = week[(week["label_timestamp"] > pd.Timestamp(lo))
                   & (week["label_timestamp"] <= pd.Timestamp(hi))]
    if arrived.empty:
        return 0
    clean, fraud = arrived[arrived["is_fraud"] == 0], arrived[arrived["is_fraud"] == 1]
    by_id = pd.DataFrame({"request_id": [f"sim-{i}" for i in clean.index],
                          "label": clean["is_fraud"].to_numpy()})
    chargebacks = pd.DataFrame({"customer_id": fraud["customer_id"].to_numpy(),
                                "merchant_id": fraud["merchant_id"].to_numpy(),
                                "timestamp": fraud["event_timestamp"].to_numpy(),
                                "label": fraud["is_fraud"].to_numpy()})
    monitoring = project.monitoring
    monitoring.log_labels(by_id)
    monitoring.log_labels(by_id.iloc[::10])  # a retry of the same labels
    if len(chargebacks):
        monitoring.log_labels(chargebacks, keys=["customer_id", "merchant_id"])
    return len(arrived)


def stage_monitor_week(project: Project, state: dict[str, Any]) -> str:
    """Demo stage: a week of traffic with the generator's shift, delayed labels, alerts, report."""
    from shipyard.project import Project as ProjectClass

    started = time.perf_counter()
    inbox = _Inbox()
    config = project.root / "shipyard.yaml"
    config.write_text(config.read_text().rstrip("\n") + "\n"
                      + _DEMO_RULES.format(webhook=inbox.url, warm=(
                          state["end"] - timedelta(days=state["days"] - 7)).isoformat()))
    try:
        with ProjectClass.load(project.root) as watched:
            start = (state["end"] - WEEK_OFFSET).replace(hour=0)
            week, ref = _week_traffic(watched, state, start)
            _log_week(watched, week, ref)
            fired: list[str] = []
            for day in range(1, 8):  # a daily `shipyard monitor run` after the day's labels
                now = start + day * DAY
                _deliver_labels(watched, week, now - DAY, now)
                result = watched.monitoring.run_alerts(at=now)
                fired += [f"day {day}: {e.rule}" + ("" if e.column == "*" else f"[{e.column}]")
                          for e in result.events if e.status == "fired"]
            end = start + 7 * DAY
            early = watched.monitoring.timeline(start=start, end=end, step="1d")
            _deliver_labels(watched, week, end, end + 30 * DAY)  # the late chargebacks land
            timeline = watched.monitoring.timeline(start=start, end=end, step="1d")
            out = watched.monitoring.report(start=start, end=end, timeline=timeline,
                                            out=project.root / "monitoring_report.html")
            _show_week(early, timeline)
            reference = watched.monitoring.reference()
    finally:
        inbox.close()
    state["monitoring"] = {"timeline": timeline, "fired": fired, "report": out,
                           "webhook_events": len(inbox.received)}
    drifted = sorted({c for r in timeline for c in r.drift.drifted_columns})
    steady = [c for c in reference.columns if c not in drifted]
    first_drift = next((i for i, r in enumerate(timeline, 1) if r.drift.drifted_columns), None)

    def metric(report: Any, name: str) -> str:
        value = getattr(report.performance, name, None)
        return "n/a" if value is None or value != value else f"{value:.3f}"

    return (f"{len(week):,} predictions over 7 days; drift from day {first_drift} in "
            f"{len(drifted)} of {len(reference.columns)} columns ({', '.join(drifted) or '-'}), "
            f"never in {', '.join(steady) or '-'}; once the labels landed: log loss "
            f"{metric(timeline[0], 'log_loss')} (day 1) -> {metric(timeline[-1], 'log_loss')} "
            f"(day 7), AUC {metric(timeline[0], 'auc')} -> {metric(timeline[-1], 'auc')}; "
            f"{len(fired)} alerts fired, {len(inbox.received)} webhook posts; report -> "
            f"{out.name} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")


def _show_week(early: list[Any], late: list[Any]) -> None:
    def num(value: Any) -> str:
        return "-" if value is None or value != value else f"{value:.3f}"

    table = Table("day", "rows", "drifted", "labels by then", "AUC then", "CBPE AUC",
                  "labels later", "AUC later", "log loss later",
                  title="A simulated week: drift, and performance before and after late labels")
    for a, b in zip(early, late, strict=True):
        table.add_row(f"{a.start:%m-%d}", f"{a.n_rows:,}",
                      f"{len(a.drift.drifted_columns)}/{len(a.drift.columns)}", f"{a.n_labeled:,}",
                      num(getattr(a.performance, "auc", None)),
                      num(getattr(a.estimated, "auc", None)), f"{b.n_labeled:,}",
                      num(getattr(b.performance, "auc", None)),
                      num(getattr(b.performance, "log_loss", None)))
    console.print(table)
