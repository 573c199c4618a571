"""`shipyard experiment create|list|show|start|pause|stop|analyze|conclude`: A/B tests and rollouts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.core.errors import InvalidInputError
from shipyard.experiments.analysis import Analysis
from shipyard.experiments.decision import Decision
from shipyard.experiments.spec import Experiment

app = typer.Typer(help="Experiments: A/B tests, canaries and shadow tests of model versions.",
                  no_args_is_help=True)

STATUS_STYLE = {"draft": "dim", "running": "green", "paused": "yellow", "stopped": "white",
                "rolled_back": "red", "concluded": "cyan"}
ACTION_STYLE = {"promote": "green", "rollback": "red", "keep running": "yellow"}


def _pairs(values: list[str], what: str, example: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise InvalidInputError(f"--{what} {value!r} is not NAME=VALUE.",
                                    hint=f"E.g. --{what} {example}.")
        out[key] = rest
    return out


def _metric(value: str) -> dict[str, Any]:
    name, _, direction = value.partition(":")
    if direction not in ("", "higher", "lower"):
        raise InvalidInputError(f"--metric {value!r}: the direction must be 'higher' or 'lower'.",
                                hint="E.g. --metric fraud_loss:lower.")
    return {"name": name, "higher_is_better": direction != "lower"}


def _read_frame(path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    if not path.exists():
        raise InvalidInputError(f"Outcomes file {path} does not exist.",
                                hint="Pass a Parquet or CSV file with one row per unit or request.")
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The experiment's name (also its hashing seed).")],
    model: Annotated[str, typer.Option(help="The served model whose requests are split.")],
    variant: Annotated[list[str], typer.Option(
        help="NAME=REF, the control first, e.g. control=fraud@champion treatment=fraud/4.")],
    unit: Annotated[str, typer.Option(help="The entity key units are assigned by.")],
    weight: Annotated[list[str] | None, typer.Option(help="NAME=SHARE (default equal).")] = None,
    mode: Annotated[str, typer.Option(help="ab, canary or shadow.")] = "ab",
    metric: Annotated[list[str] | None, typer.Option(
        help="Outcome column, :lower when lower is better; the first is primary.")] = None,
    guardrail: Annotated[list[str] | None, typer.Option(
        help="e.g. 'error_rate < 0.02', 'p99_latency_ms < 50', 'prediction_psi < 0.2'.")] = None,
    ramp: Annotated[str | None, typer.Option(
        help="Canary treatment shares, e.g. 0.01,0.05,0.25,0.5.")] = None,
    ramp_every: Annotated[float | None, typer.Option(help="Seconds per ramp step.")] = None,
    shadow_sample: Annotated[float, typer.Option(
        help="Shadow mode: share of units (0 < x <= 1) also run through the treatment.")] = 1.0,
    start: Annotated[bool, typer.Option("--start", help="Start it now.")] = False,
    project: ProjectOption = Path("."),
) -> None:
    """Define an experiment on a served model (and start it with --start)."""
    variants = _pairs(variant, "variant", "control=fraud@champion")
    weights = {k: _number(v, "weight") for k, v in _pairs(weight or [], "weight",
                                                           "control=0.5").items()} or None
    steps = [_number(v, "ramp") for v in ramp.split(",")] if ramp else None
    with open_project(project) as proj:
        e = proj.experiments.create(name, model=model, variants=variants, weights=weights,
                                    unit=unit, mode=mode, metrics=[_metric(m) for m in metric or []],
                                    guardrails=guardrail or [], ramp=steps, ramp_every=ramp_every,
                                    shadow_sample=shadow_sample, start=start)
    console.print(f"experiment [bold]{e.name}[/bold] on {e.model}: {e.status}")


def _number(value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidInputError(f"--{what} {value!r} is not a number.",
                                hint="Use a fraction, e.g. 0.5.") from None


def _status(e: Experiment) -> str:
    return f"[{STATUS_STYLE.get(e.status, 'white')}]{e.status}[/]"


@app.command("list")
def list_experiments(
    model: Annotated[str | None, typer.Option(help="Only this model's.")] = None,
    status: Annotated[str | None, typer.Option(help="Only in this status.")] = None,
    project: ProjectOption = Path("."),
) -> None:
    """List experiments, newest first."""
    with open_project(project) as proj:
        found = proj.experiments.list(model=model, status=status)
    table = Table("name", "model", "mode", "status", "variants", "unit", "started (UTC)",
                  title=f"{len(found)} experiment(s)")
    for e in found:
        table.add_row(e.name, e.model, e.mode, _status(e),
                      ", ".join(f"{v}={r}" for v, r in e.variants.items()), e.unit,
                      e.started_at.strftime("%Y-%m-%d %H:%M:%S") if e.started_at else "-")
    console.print(table)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="The experiment.")],
         project: ProjectOption = Path(".")) -> None:
    """Show an experiment's definition, status and full history."""
    with open_project(project) as proj:
        e = proj.experiments.get(name)
        events = proj.experiments.history(name)
    summary = Table("", "", title=f"experiment {e.name}", title_justify="left", show_header=False)
    summary.add_row("model", e.model)
    summary.add_row("mode", e.mode)
    summary.add_row("status", _status(e))
    summary.add_row("unit", e.unit)
    for v, ref in e.variants.items():
        summary.add_row(f"variant {v}", f"{ref} (weight {e.weights[v]:g})")
    summary.add_row("metrics", ", ".join(m.name + ("" if m.higher_is_better else " (lower)")
                                         for m in e.metrics) or "-")
    summary.add_row("guardrails", ", ".join(f"{g.metric} < {g.threshold:g}"
                                            for g in e.guardrails) or "-")
    if e.mode == "shadow":
        summary.add_row("shadow sample", f"{e.shadow_sample:g} of units")
    if e.ramp:
        summary.add_row("ramp", ", ".join(f"{r.weight:g} at {r.after_seconds:g}s" for r in e.ramp))
    if e.decision:
        summary.add_row("decision", f"{e.decision['action']}: {'; '.join(e.decision['reasons'])}")
    console.print(summary)
    history = Table("#", "at (UTC)", "event", "by", "detail", title="history")
    for ev in events:
        detail = {k: v for k, v in ev["detail"].items() if k not in ("evidence", "decision")}
        history.add_row(str(ev["seq"]), ev["at"][:19], ev["event"], ev["actor"],
                        ", ".join(f"{k}={v}" for k, v in detail.items())[:120])
    console.print(history)


def _change(action: str) -> Any:
    def command(name: Annotated[str, typer.Argument(help="The experiment.")],
                project: ProjectOption = Path(".")) -> None:
        with open_project(project) as proj:
            e = getattr(proj.experiments, action)(name)
        console.print(f"experiment [bold]{e.name}[/bold]: {_status(e)}")

    command.__doc__ = {"start": "Start (or resume) routing traffic to the variants.",
                       "pause": "Pause routing (the served version answers everything).",
                       "stop": "Stop the experiment without a decision."}[action]
    return command


for _action in ("start", "pause", "stop"):
    app.command(_action)(_change(_action))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.2%}"


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "-" if x is None else format(x, fmt)


def analysis_tables(analysis: Analysis) -> list[Table]:
    """The variants table and the metrics table of an analysis."""
    variants = Table("variant", "versions", "units", "predictions", "mean score", "AUC",
                     "log loss", "labeled", "p50 ms", "p99 ms",
                     title=f"experiment {analysis.experiment} ({analysis.mode}, {analysis.status})")
    for v in analysis.variants:
        variants.add_row(v.name, ",".join(map(str, v.versions)) or "-", f"{v.units:,}",
                         f"{v.predictions:,}", _num(v.mean_score, ".3f"), _num(v.auc, ".3f"),
                         _num(v.log_loss, ".4f"), f"{v.labeled:,}", _num(v.latency_p50_ms, ".2f"),
                         _num(v.latency_p99_ms, ".2f"))
    caption = []
    if analysis.srm is not None:
        flag = "[red]MISMATCH: no decision[/red]" if analysis.srm_detected else "ok"
        caption.append(f"SRM p={analysis.srm.p_value:.3g} {flag}")
    caption += analysis.notes
    metrics = Table("metric", "variant", "n (C/T)", "mean C", "mean T", "lift", "lift CI",
                    "p", "p Holm", "seq. p Holm", "P(win)",
                    title="metrics (treatment vs control)", caption=" · ".join(caption) or None)
    for c in analysis.comparisons:
        control, treatment = c.arms
        ci = "-" if c.lift_ci is None else f"[{c.lift_ci[0]:+.2%}, {c.lift_ci[1]:+.2%}]"
        better = c.treatment_is_better
        style = "" if c.sequential_p_adjusted is None or c.sequential_p_adjusted >= analysis.alpha \
            else ("green" if better else "red")
        metrics.add_row(c.metric + ("" if c.higher_is_better else " ↓"), c.treatment,
                        f"{control.n:,}/{treatment.n:,}", _num(control.mean), _num(treatment.mean),
                        f"[{style}]{_pct(c.lift)}[/]" if style else _pct(c.lift), ci,
                        _num(c.p_value, ".3g"), _num(c.p_adjusted, ".3g"),
                        _num(c.sequential_p_adjusted, ".3g"), _num(c.chance_to_win, ".1%")
                        if c.chance_to_win is not None else (c.note[:40] or "-"))
    return [variants, metrics]


@app.command("analyze")
def analyze(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    outcomes: Annotated[Path | None, typer.Option(
        help="Parquet/CSV outcomes (else the logged ones).")] = None,
    bayesian: Annotated[bool, typer.Option("--bayesian", help="Add chance to win.")] = False,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    project: ProjectOption = Path("."),
) -> None:
    """Per-variant counts, quality and latency; per-metric lift, CI and p-values."""
    with open_project(project) as proj:
        analysis = proj.experiments.analyze(name, _read_frame(outcomes), bayesian=bayesian,
                                            alpha=alpha)
    for table in analysis_tables(analysis):
        console.print(table)


def print_decision(decision: Decision) -> None:
    """The recommendation with its reasons (and what was changed)."""
    style = ACTION_STYLE.get(decision.action, "white")
    console.print(f"[bold {style}]{decision.action}[/]"
                  + (f" {decision.variant}" if decision.variant else "")
                  + (" (applied)" if decision.applied else ""))
    for reason in decision.reasons + decision.changes:
        console.print(f"  • {reason}", highlight=False)


@app.command("conclude")
def conclude(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    apply: Annotated[bool, typer.Option("--apply", help="Move the alias and end it.")] = False,
    outcomes: Annotated[Path | None, typer.Option(
        help="Parquet/CSV outcomes (else the logged ones).")] = None,
    min_units: Annotated[int, typer.Option(help="Units per variant before deciding.")] = 100,
    project: ProjectOption = Path("."),
) -> None:
    """Recommend promote, rollback or keep running; --apply acts on it."""
    with open_project(project) as proj:
        decision = proj.experiments.conclude(name, apply=apply, outcomes=_read_frame(outcomes),
                                             min_units=min_units)
    print_decision(decision)


# -- the demo stage -----------------------------------------------------------------------------

_DEMO_EXPERIMENT = "fraud-v2-vs-v1"
_DEMO_ROWS, _DEMO_BATCH = 8_000, 200  # simulated transactions, rows per request
_DEMO_FRAUD_SHARE = 0.2  # of the simulated traffic (see _demo_traffic)
_BLOCK_AT = 0.5  # the fraud team blocks a transaction when P(fraud) is above this
_FRICTION = 5.0  # what blocking a legitimate transaction costs (support, churn)


def _demo_traffic(project: Any, state: dict[str, Any]) -> pd.DataFrame:
    """Recent transactions sent through the model server in-process; the answers per row."""
    import warnings

    from shipyard.serving.model_server import create_model_app
    from shipyard.settings import DeploymentConfig

    with warnings.catch_warnings():  # Starlette suggests httpx2; httpx works the same here
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    settings = project.settings.model_copy(update={"deployments": [
        DeploymentConfig(model="fraud@live", name="fraud", poll_seconds=0.05, max_batch_size=64)]})
    served = type(project)(project.root, settings)
    history = pd.read_parquet(state["paths"]["labels"])
    # Real frauds are ~1.5 % of transactions: a few seconds of plain traffic would hold too few
    # to tell the models apart, so the simulated traffic is enriched with the known frauds.
    frauds = history[history["is_fraud"] == 1].tail(int(_DEMO_ROWS * _DEMO_FRAUD_SHARE))
    legit = history[history["is_fraud"] == 0].tail(_DEMO_ROWS - len(frauds))
    txns = pd.concat([frauds, legit]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    rows = [{"entities": {"customer_id": int(t.customer_id), "merchant_id": int(t.merchant_id)},
             "request": {"amount": float(t.amount)}} for t in txns.itertuples()]
    answers: list[dict[str, Any]] = []
    with TestClient(create_model_app(served), raise_server_exceptions=True) as client:
        import time

        deadline = time.monotonic() + 60
        while "experiment" not in client.post("/v1/models/fraud/predict", json=rows[0]).json():
            if time.monotonic() > deadline:
                raise InvalidInputError("The model server did not pick up the experiment.")
            time.sleep(0.02)
        for start in range(0, len(rows), _DEMO_BATCH):
            chunk = rows[start:start + _DEMO_BATCH]
            answer = client.post("/v1/models/fraud/predict", json=chunk,
                                 headers={"x-request-id": f"demo-{start}"}).json()
            variants = answer.get("variants") or [answer.get("variant")] * len(chunk)
            answers += [{"request_id": answer["request_id"], "variant": v, "p": p[-1]}
                        for v, p in zip(variants, answer["probabilities"], strict=True)]
    return pd.concat([txns, pd.DataFrame(answers)], axis=1)


def stage_ab_test(project: Any, state: dict[str, Any]) -> str:
    """Demo stage: A/B test fraud v2 against v1 on live traffic, analyze, promote the winner."""
    import numpy as np

    fits = state["fits"]
    v1, v2 = fits["v1"].version.version, fits["v2"].version.version
    project.models.set_alias("fraud", "live", v1)  # production still runs v1
    project.experiments.create(
        _DEMO_EXPERIMENT, model="fraud", unit="customer_id", start=True,
        variants={"control": "fraud@live", "treatment": f"fraud/{v2}"},
        metrics=["log_loss", {"name": "fraud_cost", "higher_is_better": False}],
        guardrails=["error_rate < 0.02", "p99_latency_ms < 2000"])
    traffic = _demo_traffic(project, state)
    blocked = traffic["p"] > _BLOCK_AT
    fraud = traffic["is_fraud"].astype(bool)
    outcomes = pd.DataFrame({
        "request_id": traffic["request_id"], "customer_id": traffic["customer_id"],
        "label": traffic["is_fraud"].astype(int),
        "fraud_cost": np.where(fraud & ~blocked, traffic["amount"], 0.0)
        + np.where(~fraud & blocked, _FRICTION, 0.0)})
    project.experiments.log_outcomes(_DEMO_EXPERIMENT, outcomes)
    analysis = project.experiments.analyze(_DEMO_EXPERIMENT, bayesian=True)
    for table in analysis_tables(analysis):
        console.print(table)
    decision = project.experiments.conclude(_DEMO_EXPERIMENT, apply=True)
    print_decision(decision)
    state["ab_test"] = {"analysis": analysis, "decision": decision}
    live = project.models.resolve("fraud@live").version
    return (f"{len(traffic):,} transactions of {traffic['customer_id'].nunique():,} customers; "
            f"{decision.action} -> fraud@live is version {live}")
