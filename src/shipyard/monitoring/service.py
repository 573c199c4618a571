"""`project.monitoring`: labels, references, windows, alerts and reports for a project's models."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from shipyard.core.errors import ConfigError, InvalidInputError
from shipyard.core.time import to_utc, utc_now
from shipyard.metadata.db import Database
from shipyard.monitoring.alerts import (
    AlertRule,
    AlertRun,
    apply_verdicts,
    check_rules,
    judge,
    webhook_poster,
)
from shipyard.monitoring.drift import DriftReport, MethodArg, drift
from shipyard.monitoring.quality import QualityReport, data_quality
from shipyard.monitoring.reference import Reference, from_training, from_window
from shipyard.monitoring.store import AlertEvent, MonitoringStore
from shipyard.monitoring.windows import (
    WindowProfiles,
    WindowReport,
    floor_hour,
    merge_many,
    parse_window,
    window_report,
)

if TYPE_CHECKING:
    from shipyard.models import ModelRegistry
    from shipyard.monitoring.gauges import MonitoringGauges
    from shipyard.predictions import PredictionLog


@dataclass(frozen=True)
class MonitoringOptions:
    """The `monitoring` section of shipyard.yaml, as plain values."""

    model: str | None = None
    reference: str = "training"
    """training (the deployed version's train split) or predictions (a past window)."""
    reference_start: str | None = None
    reference_end: str | None = None
    webhook_url: str | None = None
    webhook_timeout_seconds: float = 5.0
    alerts: tuple[AlertRule, ...] = field(default_factory=tuple)


class Monitoring:
    """Drift, quality and performance of a project's models over windows of their traffic."""

    def __init__(self, db: Database, project: str, log: PredictionLog, *,
                 models: Callable[[], ModelRegistry], get_dataset: Callable[[str], Any],
                 get_run: Callable[[str], Any],
                 watermarks: Callable[[], Mapping[str, datetime]] | None = None,
                 newest_events: Callable[[], Mapping[str, datetime]] | None = None,
                 options: MonitoringOptions | None = None) -> None:
        self.project = project
        self.log = log
        self.store = MonitoringStore(db, project)
        self.options = options or MonitoringOptions()
        self._models = models
        self._get_dataset = get_dataset
        self._get_run = get_run
        self._watermarks = watermarks
        self._newest_events = newest_events
        self._references: dict[str, Reference] = {}
        self._profiles = WindowProfiles(self.store, self.log.read)

    # -- on frames ---------------------------------------------------------------------------

    def drift(self, reference: pd.DataFrame, current: pd.DataFrame,
              columns: Sequence[str] | None = None, method: MethodArg = None,
              **options: Any) -> DriftReport:
        """Per-column drift of `current` against `reference` (see shipyard.monitoring.drift)."""
        return drift(reference, current, columns, method, **options)

    def data_quality(self, reference: pd.DataFrame, current: pd.DataFrame,
                     columns: Sequence[str] | None = None) -> QualityReport:
        """Missing, type, range, unseen and constant findings of `current` against `reference`."""
        return data_quality(reference, current, columns)

    # -- the logs ----------------------------------------------------------------------------

    def predictions(self, model: str | None = None, start: datetime | str | None = None,
                    end: datetime | str | None = None) -> pd.DataFrame:
        """The logged predictions of `model` with start <= timestamp < end, oldest first."""
        return self.log.read(self._model_name(model), start, end)


    def log_labels(self, labels: pd.DataFrame, *, label: str = "label",
                   keys: Sequence[str] | None = None, timestamp: str = "timestamp") -> int:
        """Log ground truth: by `request_id`, or by entity `keys` plus the prediction's timestamp.

        Late and repeated labels are fine: the one logged last wins. Returns the count logged.
        """
        return self.log.labels.write(labels, label=label, keys=keys, timestamp=timestamp)

    def labeled(self, model: str | None = None, start: datetime | str | None = None,
                end: datetime | str | None = None) -> pd.DataFrame:
        """The model's predictions in [start, end) with their newest `label` (NaN if none yet)."""
        return self.log.read_labeled(self._model_name(model), start, end)

    # -- references and windows ----------------------------------------------------------------

    def reference(self, model: str | None = None) -> Reference:
        """The reference of the deployed version (cached per version)."""
        ref = self._model_ref(model)
        opts = self.options
        if opts.reference == "predictions" and not (opts.reference_start and opts.reference_end):
            raise ConfigError(
                "A reference of past predictions needs reference_start and reference_end.",
                hint="Set both under monitoring: in shipyard.yaml.")
        version = self._models().get_version(ref)
        if version.ref not in self._references:
            if opts.reference == "predictions":
                built = from_window(version.ref, self._models(), self.log.read_labeled,
                                    opts.reference_start, opts.reference_end)
            else:
                built = from_training(version.ref, self._models(), self._get_dataset,
                                      self._get_run, start=opts.reference_start,
                                      end=opts.reference_end)
            self._references[version.ref] = built
        return self._references[version.ref]

    def window(self, model: str | None = None, *, start: datetime | str,
               end: datetime | str) -> WindowReport:
        """Drift, quality and performance of [start, end) (hour-aligned) against the reference."""
        return self.timeline(model, start=start, end=end, step=None)[0]

    def timeline(self, model: str | None = None, *, start: datetime | str, end: datetime | str,
                 step: str | None = "1d") -> list[WindowReport]:
        """One report per `step` ('1h', '1d', ...) from start to end; None: one window."""
        reference = self.reference(model)
        lo, hi = floor_hour(start), floor_hour(to_utc(end) + timedelta(minutes=59, seconds=59))
        if hi <= lo:
            raise InvalidInputError(f"The window from {start} to {end} is empty.",
                                    hint="Give an end after the start.")
        width = hi - lo if step is None else parse_window(step)
        hourly = self._profiles.hourly(reference, lo, hi)
        labeled = self.log.read_labeled(reference.model, lo, hi)
        reports = []
        moment = lo
        while moment < hi:
            stop = min(moment + width, hi)
            profile = merge_many([p for h, p in hourly.items() if moment <= h < stop])
            rows = labeled[(labeled["timestamp"] >= pd.Timestamp(moment))
                           & (labeled["timestamp"] < pd.Timestamp(stop))]
            reports.append(window_report(reference, profile, rows, moment, stop))
            moment = stop
        return reports

    def freshness(self, at: datetime | None = None) -> dict[str, float]:
        """Age in seconds at `at` (default: now) of the newest value in the online store, per view.

        The age of the newest event time written to the view's online rows by any
        materialization or push (`OnlineStore.newest_event_times`); a view the store has no
        record of falls back to its materialization watermark. An event time after `at` is
        age 0.
        """
        newest: dict[str, datetime] = dict(self._watermarks() if self._watermarks else {})
        if self._newest_events is not None:
            newest.update(self._newest_events())
        now = to_utc(at) if at is not None else utc_now()
        return {view: max((now - to_utc(moment)).total_seconds(), 0.0)
                for view, moment in newest.items()}

    # -- alerts ------------------------------------------------------------------------------

    def run_alerts(self, *, at: datetime | str | None = None,
                   rules: Sequence[AlertRule] | None = None,
                   gauges: MonitoringGauges | None = None) -> AlertRun:
        """Evaluate the alert rules on the windows ending at `at` (default: this hour's start).

        Stores the verdicts, stores (and posts to the webhook) an event when one changes, and
        updates `gauges` (a Prometheus collector) when given.
        """
        chosen = list(self.options.alerts if rules is None else rules)
        check_rules(chosen)
        moment = floor_hour(at if at is not None else utc_now())
        freshness = self.freshness(moment)
        reports: dict[tuple[str, str], WindowReport] = {}
        verdicts = []
        for rule in chosen:
            model = rule.model or self.options.model
            key = (self._model_name(model), rule.window)
            if key not in reports:
                width = parse_window(rule.window)
                reports[key] = self.window(model, start=moment - width, end=moment)
            reference = self.reference(model)
            verdicts += judge(rule, key[0], reports[key], reference.profile,
                              reference.training_metrics, freshness)
        post = None
        if self.options.webhook_url:
            post = webhook_poster(self.options.webhook_url, self.project,
                                  self.options.webhook_timeout_seconds)
        events = apply_verdicts(self.store, verdicts, moment, post=post)
        run = AlertRun(moment, verdicts, events)
        if gauges is not None:
            gauges.update(run, reports)
        return run

    def list_alerts(self, model: str | None = None, *, start: datetime | str | None = None,
                    end: datetime | str | None = None) -> list[AlertEvent]:
        """Stored alert events (fired and resolved), oldest first."""
        return self.store.list_events(model=None if model is None else self._model_name(model),
                                      start=None if start is None else to_utc(start),
                                      end=None if end is None else to_utc(end))

    # -- reports -----------------------------------------------------------------------------

    def report(self, model: str | None = None, *, start: datetime | str, end: datetime | str,
               out: str | Path, step: str = "1d",
               timeline: Sequence[WindowReport] | None = None) -> Path:
        """Write a self-contained HTML report (plotly, JavaScript embedded) and return its path.

        Pass `timeline` when it is at hand already (the windows of start to end by step).
        """
        from shipyard.monitoring.report import write_report

        reference = self.reference(model)
        if timeline is None:
            timeline = self.timeline(model, start=start, end=end, step=step)
        # an evaluation at the period's end judged windows inside it: include its events
        alerts = self.list_alerts(model, start=start,
                                  end=timeline[-1].end + timedelta(microseconds=1))
        return write_report(Path(out), reference=reference, timeline=timeline, alerts=alerts,
                            freshness=self.freshness())

    # -- names -------------------------------------------------------------------------------

    def _model_ref(self, model: str | None) -> str:
        ref = model or self.options.model
        if not ref:
            raise InvalidInputError("Which model? None given and monitoring.model is not set.",
                                    hint="Pass a model such as 'fraud@champion', or set "
                                         "monitoring.model in shipyard.yaml.")
        return ref

    def _model_name(self, model: str | None) -> str:
        from shipyard.models import parse_ref

        return parse_ref(self._model_ref(model)).name
