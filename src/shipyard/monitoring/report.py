"""The monitoring report: one self-contained HTML file (plotly, its JavaScript embedded inline).

Everything is drawn from profiles and window reports, never from raw rows, so a report over
a month costs what the merged hourly profiles cost. No network is needed to open it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.errors import ConfigError
from shipyard.core.time import utc_now
from shipyard.monitoring.binning import coarsen
from shipyard.monitoring.profiles import CategoricalProfile, NumericProfile, Profile

if TYPE_CHECKING:
    from shipyard.monitoring.reference import Reference
    from shipyard.monitoring.store import AlertEvent
    from shipyard.monitoring.windows import WindowReport

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.bad{background:#fde2e1}.ok{background:#e6f4ea}
"""
DISTRIBUTION_BINS = 20


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ModuleNotFoundError as exc:
        raise ConfigError("The monitoring report needs plotly.",
                          hint="pip install 'shipyard[monitoring]'") from exc
    return go


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float | np.floating):
        return "–" if not math.isfinite(value) else f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
           bad: Sequence[bool] | None = None) -> str:
    head = "".join(f"<th class='l'>{html.escape(h)}</th>" if i == 0 else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for i, row in enumerate(rows):
        cls = " class='bad'" if bad and bad[i] else ""
        cells = "".join(f"<td class='l'>{_fmt(c)}</td>" if j == 0 else f"<td>{_fmt(c)}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _merged(timeline: Sequence[WindowReport]) -> Profile:
    from shipyard.monitoring.windows import merge_many

    return merge_many([report.profile for report in timeline])


def _bin_labels(ref: NumericProfile, n_slots: int) -> list[str]:
    """Names of the slots `coarsen` gives: underflow, reference-decile groups, overflow."""
    edges, inner = ref.edges, ref.counts[1:-1]
    if n_slots != DISTRIBUTION_BINS + 2:  # coarsen kept the bins as they were
        middle = [f"{edges[i]:.4g} – {edges[i + 1]:.4g}" for i in range(max(edges.size - 1, 0))]
    else:
        mass = np.cumsum(inner) - inner / 2
        group = np.minimum((mass * DISTRIBUTION_BINS) // max(inner.sum(), 1),
                           DISTRIBUTION_BINS - 1).astype(int)
        middle = []
        for g in range(DISTRIBUTION_BINS):
            members = np.flatnonzero(group == g)
            middle.append(f"{edges[members[0]]:.4g} – {edges[members[-1] + 1]:.4g}"
                          if members.size else f"group {g + 1}")
    labels = ["below reference", *middle, "above reference"]
    return labels[:n_slots] + [f"slot {i}" for i in range(len(labels), n_slots)]


def _distribution(go: Any, name: str, ref: Any, cur: Any) -> Any:
    fig = go.Figure()
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        ref_counts, cur_counts = coarsen(ref.counts.astype(float), cur.counts.astype(float),
                                         DISTRIBUTION_BINS)
        labels = _bin_labels(ref, ref_counts.size)
    elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        keep = min(len(ref.categories), 15)
        labels = [*ref.categories[:keep], "other / unseen"]
        ref_counts = np.append(ref.counts[:keep], ref.counts[keep:].sum()).astype(float)
        cur_counts = np.append(cur.counts[:keep], cur.counts[keep:].sum()).astype(float)
    else:
        return fig
    for label, counts in (("reference", ref_counts), ("current", cur_counts)):
        total = counts.sum()
        share = counts / total if total else counts
        fig.add_trace(go.Bar(x=labels[: share.size], y=share, name=label))
    fig.update_layout(title=f"{name}: reference vs current", barmode="group", height=320,
                      yaxis_title="share of values", margin={"t": 40, "b": 40})
    return fig


def _drift_over_time(go: Any, timeline: Sequence[WindowReport]) -> Any:
    fig = go.Figure()
    x = [r.start for r in timeline]
    for name in timeline[0].drift.columns:
        values = [r.drift.columns[name].statistic for r in timeline]
        drifted = [r.drift.columns[name].drift_detected for r in timeline]
        fig.add_trace(go.Scatter(x=x, y=values, mode="lines+markers", name=name,
                                 marker={"symbol": ["x" if d else "circle" for d in drifted],
                                         "size": [11 if d else 6 for d in drifted]}))
    fig.update_layout(title="Drift score per column over time (x: drift detected)",
                      yaxis_title="statistic / distance", height=420)
    return fig


def _performance_over_time(go: Any, timeline: Sequence[WindowReport], task: str,
                           training: Mapping[str, float]) -> Any:
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [r.start for r in timeline]
    fig.add_trace(go.Bar(x=x, y=[r.n_labeled for r in timeline], name="labeled rows",
                         opacity=0.3), secondary_y=True)
    names = ("auc", "accuracy", "f1") if task == "classification" else ("rmse", "mae")
    for name in names:
        fig.add_trace(go.Scatter(x=x, y=[getattr(r.performance, name, None) for r in timeline],
                                 mode="lines+markers", name=f"{name} (realized)"),
                      secondary_y=False)
        at_training = training.get(f"validation_{name}")
        if at_training is not None and math.isfinite(at_training):
            fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[at_training, at_training], mode="lines",
                                     line={"dash": "dot"}, name=f"{name} at training"),
                          secondary_y=False)
        if task == "classification":
            fig.add_trace(go.Scatter(x=x, y=[getattr(r.estimated, name, None) for r in timeline],
                                     mode="lines", line={"dash": "dash"},
                                     name=f"{name} (estimated, CBPE)"), secondary_y=False)
    fig.update_layout(title="Performance over time, with the labeled rows behind each figure",
                      height=420)
    fig.update_yaxes(title_text="metric", secondary_y=False)
    fig.update_yaxes(title_text="labeled rows", secondary_y=True)
    return fig


def write_report(out: Path, *, reference: Reference, timeline: Sequence[WindowReport],
                 alerts: Sequence[AlertEvent], freshness: Mapping[str, float] | None = None,
                 title: str | None = None) -> Path:
    """Render the report to `out` (folders created) and return the path."""
    go = _plotly()
    current = _merged(timeline)
    figures = [_drift_over_time(go, timeline),
               _performance_over_time(go, timeline, reference.task, reference.training_metrics)]
    figures += [_distribution(go, name, reference.profile.columns[name], current.columns[name])
                for name in reference.columns]
    parts = []
    for i, fig in enumerate(figures):
        # the first figure carries plotly.js inline; the others reuse it
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                                 include_mathjax=False, config={"displaylogo": False}))
    start, end = timeline[0].start, timeline[-1].end
    summary = _table(
        ["window", "rows", "labeled", "share drifted", "drifted columns", "auc", "auc (CBPE)",
         "accuracy", "accuracy (CBPE)"],
        [[f"{r.start:%Y-%m-%d %H:%M}", r.n_rows, r.n_labeled, r.drift.share_drifted,
          ", ".join(r.drift.drifted_columns), getattr(r.performance, "auc", None),
          getattr(r.estimated, "auc", None), getattr(r.performance, "accuracy", None),
          getattr(r.estimated, "accuracy", None)] for r in timeline],
        [r.drift.dataset_drift for r in timeline])
    overall = timeline[0].drift if len(timeline) == 1 else None
    from shipyard.monitoring.drift import drift_from_profiles
    from shipyard.monitoring.quality import data_quality

    overall = overall or drift_from_profiles(reference.profile, current)
    drift_rows = [[c.column, c.kind, c.method, c.statistic, c.p_value, c.effect_size, c.threshold,
                   c.missing_share_reference, c.missing_share_current, c.drift_detected]
                  for c in overall.columns.values()]
    quality = data_quality(reference.profile, current)
    quality_rows = [[q.column, q.n_rows, q.missing_share, q.missing_share_reference,
                     q.type_violation_share, q.out_of_range_share, q.unseen_share, q.is_constant]
                    for q in quality.columns.values()]
    alert_rows = [[f"{a.at:%Y-%m-%d %H:%M}", a.status, a.severity, a.rule, a.column, a.value,
                   a.threshold, a.message] for a in alerts]
    training = ", ".join(f"{k.removeprefix('validation_')} {v:.3f}"
                         for k, v in reference.training_metrics.items()
                         if k.startswith("validation_") and math.isfinite(v))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title or f"Monitoring: {reference.version.ref}")}</title>
<style>{_CSS}</style></head><body>
<h1>Monitoring report: {html.escape(reference.version.ref)}</h1>
<p class="sub">{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC · reference:
{html.escape(reference.description)} · generated {utc_now():%Y-%m-%d %H:%M} UTC</p>
<p>At training time (validation split): {html.escape(training or 'n/a')}.</p>
<h2>Windows</h2>{summary}
<h2>Alerts</h2>{_table(["at", "status", "severity", "rule", "column", "value", "threshold",
                        "message"], alert_rows) if alert_rows else "<p>No alert events.</p>"}
{parts[0]}{parts[1]}
<h2>Drift over the whole period</h2>
{_table(["column", "kind", "method", "statistic", "p-value", "effect size", "threshold",
         "missing (ref)", "missing (cur)", "drifted"], drift_rows,
        [c.drift_detected for c in overall.columns.values()])}
<h2>Data quality over the whole period</h2>
{_table(["column", "rows", "missing", "missing (ref)", "type violations", "out of range",
         "unseen", "constant"], quality_rows)}
<h2>Feature freshness</h2>
{_table(["feature view", "age of the newest online value, s", "hours"],
        [[view, age, age / 3600] for view, age in (freshness or {}).items()])
 if freshness else "<p>No feature values in the online store yet.</p>"}
<h2>Distributions: reference vs current</h2>
{''.join(parts[2:])}
</body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
