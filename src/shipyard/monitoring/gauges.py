"""The latest monitoring values as Prometheus gauges, refreshed after every alert evaluation."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from shipyard.monitoring.alerts import AlertRun
    from shipyard.monitoring.windows import WindowReport


class MonitoringGauges:
    """A Prometheus collector of the last evaluation: metric values, firing rules, window rows.

    Register it once (``register``); each ``update`` replaces what the next scrape shows, so
    a long-running `shipyard monitor run --every` keeps one set of series current.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, ...], float] = {}
        self._firing: dict[tuple[str, ...], float] = {}
        self._rows: dict[tuple[str, ...], float] = {}

    def register(self, registry: CollectorRegistry) -> MonitoringGauges:
        """Add this collector to `registry`; returns self."""
        registry.register(self)  # type: ignore[arg-type]
        return self

    def update(self, run: AlertRun, reports: Mapping[tuple[str, str], WindowReport]) -> None:
        """Show the values of `run` (and the row counts of its windows) from now on."""
        values, firing, rows = {}, {}, {}
        for v in run.verdicts:
            if v.value is not None and math.isfinite(v.value):
                values[(v.model, v.rule.metric, v.column, v.rule.window)] = float(v.value)
            key = (v.rule.rule_name, v.model, v.column, v.rule.severity)
            firing[key] = max(firing.get(key, 0.0), float(v.is_firing))
        for (model, window), report in reports.items():
            rows[(model, window, "predictions")] = float(report.n_rows)
            rows[(model, window, "labeled")] = float(report.n_labeled)
        self._values, self._firing, self._rows = values, firing, rows

    def collect(self) -> Iterator[Any]:
        """The gauge families (called by prometheus_client on each scrape)."""
        from prometheus_client.core import GaugeMetricFamily

        families = [
            ("shipyard_monitoring_value", "Latest value of a monitored metric.",
             ["model", "metric", "column", "window"], self._values),
            ("shipyard_monitoring_alert_firing", "1 while an alert rule's condition holds.",
             ["rule", "model", "column", "severity"], self._firing),
            ("shipyard_monitoring_window_rows", "Rows (and labeled rows) in the evaluated window.",
             ["model", "window", "kind"], self._rows),
        ]
        for name, documentation, labels, samples in families:
            family = GaugeMetricFamily(name, documentation, labels=labels)
            for key, value in samples.items():
                family.add_metric(list(key), value)
            yield family
