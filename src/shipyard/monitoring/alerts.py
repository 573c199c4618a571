"""Alert rules: evaluate metrics over windows, de-duplicate, store events, post webhooks, gauges.

A rule names a metric, a column (or `*` for each monitored column), a window and a
threshold. Every evaluation gives one verdict per (rule, column); an event is stored only
when the verdict changes: `fired` when the condition starts to hold, `resolved` when it
stops. A condition that stays true fires once, however often `shipyard monitor run` runs.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from shipyard.core.errors import ConfigError
from shipyard.monitoring.drift import drift_from_profiles
from shipyard.monitoring.store import AlertEvent, AlertState, MonitoringStore

if TYPE_CHECKING:
    from shipyard.monitoring.profiles import Profile
    from shipyard.monitoring.windows import WindowReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """How a metric is read from a window and when it is bad."""

    scope: str
    """column (one value per monitored column), dataset, performance, estimated, view."""
    higher_is_bad: bool
    default_threshold: float | None


_LOWER_BAD = ("auc", "accuracy", "precision", "recall", "f1")
METRICS: dict[str, Metric] = {
    "drift": Metric("column", True, None),  # the column's test decides; threshold overrides it
    "share_drifted": Metric("dataset", True, 0.5),
    "missing_share": Metric("column", True, 0.1),
    "out_of_range_share": Metric("column", True, 0.05),
    "unseen_share": Metric("column", True, 0.05),
    "type_violation_share": Metric("column", True, 0.0),
    "row_count": Metric("dataset", False, 1.0),
    **{name: Metric("performance", False, None) for name in _LOWER_BAD},
    **{name: Metric("performance", True, None) for name in ("log_loss", "ece", "rmse", "mae")},
    **{f"estimated_{name}": Metric("estimated", False, None) for name in _LOWER_BAD},
    "freshness_seconds": Metric("view", True, 86_400.0),
}
TRAINING_MARGIN = 0.05
"""Performance rules without a threshold fire this far below the value at training time."""


@dataclass(frozen=True)
class AlertRule:
    """One rule from shipyard.yaml (`monitoring.alerts`)."""

    metric: str
    column: str = "*"
    model: str | None = None
    window: str = "1d"
    threshold: float | None = None
    severity: str = "warning"
    name: str | None = None
    min_rows: int = 100

    @property
    def rule_name(self) -> str:
        """The rule's name (its alert state's key): given, or `<metric>:<column>` plus the
        window and threshold where they differ from the defaults (`missing_share:amount@7d[0.2]`).
        Rules that differ in severity only must be named (`check_rules`)."""
        if self.name:
            return self.name
        window = "" if self.window == "1d" else f"@{self.window}"
        known = METRICS.get(self.metric)
        default = known.default_threshold if known is not None else None
        threshold = "" if self.threshold in (None, default) else f"[{self.threshold:g}]"
        return f"{self.metric}:{self.column}{window}{threshold}"


@dataclass(frozen=True)
class Verdict:
    """One rule on one column at one evaluation."""

    rule: AlertRule
    model: str
    column: str
    value: float | None
    threshold: float | None
    is_firing: bool
    window_start: datetime
    window_end: datetime
    note: str = ""


def check_rules(rules: Sequence[AlertRule]) -> None:
    """Raise ConfigError for an unknown metric or two rules of one name (before anything is
    evaluated): rules sharing a name would share one alert state."""
    seen: set[tuple[str, str | None]] = set()
    for rule in rules:
        if rule.metric not in METRICS:
            raise ConfigError(f"Alert rule {rule.rule_name!r} has unknown metric {rule.metric!r}.",
                              hint=f"Use one of {sorted(METRICS)} in monitoring.alerts.")
        key = (rule.rule_name, rule.model)
        if key in seen:
            raise ConfigError(f"Two alert rules are named {rule.rule_name!r}.",
                              hint="Give each rule in monitoring.alerts its own `name`.")
        seen.add(key)


def _crossed(value: float | None, threshold: float | None, higher_is_bad: bool) -> bool:
    if value is None or threshold is None or not math.isfinite(value):
        return False
    return value > threshold if higher_is_bad else value < threshold


def _training_threshold(rule: AlertRule, training: Mapping[str, float]) -> float | None:
    name = rule.metric.removeprefix("estimated_")
    base = training.get(f"validation_{name}")
    if base is None or not math.isfinite(base):
        return None
    return base - TRAINING_MARGIN if name in _LOWER_BAD else base * (1 + TRAINING_MARGIN * 5)


def judge(rule: AlertRule, model: str, report: WindowReport, reference: Profile,
          training: Mapping[str, float], freshness: Mapping[str, float]) -> list[Verdict]:
    """The verdicts of one rule on one window report (against the reference profile)."""
    metric = METRICS[rule.metric]
    threshold = rule.threshold if rule.threshold is not None else metric.default_threshold

    def verdict(column: str, value: float | None, firing: bool | None = None, note: str = "",
                limit: float | None = threshold) -> Verdict:
        fires = _crossed(value, limit, metric.higher_is_bad) if firing is None else firing
        return Verdict(rule, model, column, value, limit, fires, report.start, report.end, note)

    if metric.scope == "view":
        views = list(freshness) if rule.column == "*" else [rule.column]
        return [verdict(v, freshness.get(v)) for v in views]
    if metric.scope == "dataset":
        if rule.metric == "row_count":
            return [verdict("*", float(report.n_rows))]
        if report.n_rows < rule.min_rows:
            return [verdict("*", None, False, f"{report.n_rows} rows < min_rows")]
        return [verdict("*", report.drift.share_drifted)]
    if metric.scope in ("performance", "estimated"):
        source = report.performance if metric.scope == "performance" else report.estimated
        n = report.n_labeled if metric.scope == "performance" else report.n_rows
        limit = threshold if threshold is not None else _training_threshold(rule, training)
        name = rule.metric.removeprefix("estimated_")
        value = getattr(source, name, None) if source is not None else None
        if n < rule.min_rows:
            return [verdict("*", value, False, f"{n} rows < min_rows", limit)]
        return [verdict("*", None if value is None else float(value), None, "", limit)]
    columns = list(report.drift.columns) if rule.column == "*" else [rule.column]
    unknown = [c for c in columns if c not in report.drift.columns]
    if unknown:
        raise ConfigError(f"Alert rule {rule.rule_name!r} names unknown column {unknown[0]!r}.",
                          hint=f"Monitored columns: {list(report.drift.columns)!r}, or '*'.")
    if report.n_rows < rule.min_rows:
        return [verdict(c, None, False, f"{report.n_rows} rows < min_rows") for c in columns]
    if rule.metric == "drift":
        drift = report.drift
        if rule.threshold is not None:
            drift = drift_from_profiles(reference, report.profile,
                                        thresholds={c: rule.threshold for c in columns})
        return [verdict(c, drift.columns[c].statistic, drift.columns[c].drift_detected,
                        drift.columns[c].method, drift.columns[c].threshold) for c in columns]
    quality = report.quality.columns
    return [verdict(c, getattr(quality[c], rule.metric)) for c in columns]


@dataclass(frozen=True)
class AlertRun:
    """What one evaluation found and did."""

    at: datetime
    verdicts: list[Verdict]
    events: list[AlertEvent]

    @property
    def firing(self) -> list[Verdict]:
        """Verdicts whose condition holds now."""
        return [v for v in self.verdicts if v.is_firing]


def apply_verdicts(store: MonitoringStore, verdicts: Sequence[Verdict], at: datetime, *,
                   post: Callable[[AlertEvent], str] | None = None) -> list[AlertEvent]:
    """Store the verdicts; add (and post) an event for every one that changed state.

    Reading the states, adding the events and writing the states is one transaction that
    concurrent evaluations take in turn, so a change is stored (and posted) once; webhooks
    are posted after it commits.
    """
    def decide(before: Mapping[tuple[str, str, str], AlertState]
               ) -> tuple[list[AlertState], list[dict[str, object]]]:
        states, changes = [], []
        for v in verdicts:
            key = (v.rule.rule_name, v.model, v.column)
            old = before.get(key)
            was_firing = old is not None and old.is_firing
            since = old.since if old is not None and old.is_firing == v.is_firing else at
            states.append(AlertState(*key, v.is_firing, v.value, since))
            if v.is_firing == was_firing:
                continue
            status = "fired" if v.is_firing else "resolved"
            changes.append({
                "rule": v.rule.rule_name, "model": v.model, "column": v.column,
                "metric": v.rule.metric, "severity": v.rule.severity, "status": status,
                "value": v.value, "threshold": v.threshold, "window_start": v.window_start,
                "window_end": v.window_end, "at": at, "message": _message(v, status)})
        return states, changes

    events = store.update_alerts(decide, at)
    if post is not None:
        for i, event in enumerate(events):
            status = post(event)
            store.set_webhook_status(event.id, status)
            events[i] = replace(event, webhook_status=status)
    return events


def _message(v: Verdict, status: str) -> str:
    value = "n/a" if v.value is None else f"{v.value:.4g}"
    limit = "the test's threshold" if v.threshold is None else f"{v.threshold:.4g}"
    where = "" if v.column == "*" else f" of {v.column!r}"
    return (f"[{v.rule.severity}] {v.model}: {v.rule.metric}{where} = {value} "
            f"(threshold {limit}, window {v.rule.window}) {status}")


def check_webhook_url(url: str) -> str:
    """The URL if it is http(s) with a host; ConfigError otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        valid = False
    if not valid:
        raise ConfigError(f"The alert webhook URL must start with http:// or https:// and name a "
                          f"host, not {safe_url(url)!r}.",
                          hint="Fix monitoring.webhook_url, e.g. https://hooks.slack.com/services/...")
    return url


def safe_url(url: str) -> str:
    """Only the scheme and host of a URL (a webhook's path or query often holds a secret)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "<unreadable url>"
    if not parts.scheme or not host:
        return "<url without scheme or host>"
    return f"{parts.scheme}://{host}/..."


def webhook_poster(url: str, project: str, timeout_seconds: float = 5.0
                   ) -> Callable[[AlertEvent], str]:
    """A function that POSTs an event as JSON to `url` and returns the outcome as text
    (ConfigError now for a URL that is not http(s))."""
    check_webhook_url(url)
    shown = safe_url(url)

    def post(event: AlertEvent) -> str:
        body = json.dumps({"project": project, "event": event.to_dict()}).encode()
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
                return str(response.status)
        except urllib.error.HTTPError as exc:
            logger.warning("Alert webhook %s answered %s.", shown, exc.code)
            return str(exc.code)
        except (urllib.error.URLError, OSError, ValueError) as exc:  # never fail the evaluation
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            text = str(reason).replace(url, shown)
            logger.warning("Alert webhook %s failed: %s", shown, text)
            return f"error: {text}"
    return post
