"""Per-window monitoring of a model: hourly profiles (stored, merged), drift, quality, performance.

Profiles are kept per UTC hour, counted on the reference's bins, in the metadata store: a
day's profile is the merge of its 24 hourly ones, so a report over a month reads ~720 small
rows instead of rescanning the prediction log. An hour is stored once it is over (plus a
grace period for the log's flush); the hour in progress is recomputed on each call.
Performance needs the labels, which keep arriving, so it is computed from the labeled rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError
from shipyard.core.time import to_utc, utc_now
from shipyard.monitoring.drift import DriftReport, drift_from_profiles
from shipyard.monitoring.performance import (
    ClassificationMetrics,
    EstimatedPerformance,
    RegressionMetrics,
    classification_metrics,
    regression_metrics,
)
from shipyard.monitoring.profiles import CategoricalProfile, NumericProfile, Profile, build_profile
from shipyard.monitoring.quality import QualityReport, data_quality
from shipyard.monitoring.reference import Reference, log_outputs
from shipyard.monitoring.store import MonitoringStore

HOUR = timedelta(hours=1)
GRACE = timedelta(minutes=5)
"""An hour's profile is stored this long after it ends (the log flushes within seconds)."""

ReadLog = Callable[[str, datetime, datetime], pd.DataFrame]


@dataclass(frozen=True)
class WindowReport:
    """Everything measured on one window of a model's traffic."""

    start: datetime
    end: datetime
    n_rows: int
    profile: Profile
    drift: DriftReport
    quality: QualityReport
    n_labeled: int
    performance: ClassificationMetrics | RegressionMetrics | None
    """Realized, on the labeled rows (None without labels)."""
    estimated: EstimatedPerformance | None
    """CBPE from the scores of every row (classifiers with a calibrated reference)."""


def parse_window(text: str) -> timedelta:
    """'6h', '1d', '7d', '90m' (whole hours) as a timedelta."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value, unit = str(text).strip()[:-1], str(text).strip()[-1:].lower()
    try:
        delta = timedelta(**{units[unit]: float(value)})
    except (KeyError, ValueError, OverflowError):  # OverflowError: '1e9d', 'infh'
        raise InvalidInputError(f"Window {text!r} is not a duration.",
                                hint="Write a number and a unit: '6h', '1d', '7d'.") from None
    if delta < HOUR or delta % HOUR:
        raise InvalidInputError(f"Window {text!r} is not a whole number of hours.",
                                hint="Profiles are hourly: use '1h', '6h', '1d', ...") from None
    return delta


def floor_hour(moment: datetime | str) -> datetime:
    """The start of the UTC hour holding `moment`."""
    return to_utc(moment).replace(minute=0, second=0, microsecond=0)


def monitored_frame(log: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """The reference's columns out of prediction-log rows (absent columns: all missing)."""
    out = pd.DataFrame(index=log.index)
    for name in reference.features:
        out[name] = log[name] if name in log.columns else np.nan
    out[reference.output] = log_outputs(log, reference.task) if len(log) else pd.Series(dtype=float)
    return out


def _slim(profile: Profile) -> dict[str, Any]:
    """A profile without the reference's bins and vocabulary (they come back from it)."""
    data = profile.to_dict()
    for column in data["columns"].values():
        column.pop("edges", None)
        column.pop("categories", None)
    return data


def _widen(data: dict[str, Any], reference: Profile) -> Profile:
    for name, column in data["columns"].items():
        ref = reference.columns[name]
        if isinstance(ref, NumericProfile):
            column["edges"] = ref.edges.tolist()
        elif isinstance(ref, CategoricalProfile):
            column["categories"] = list(ref.categories)
    return Profile.from_dict(data)


def merge_many(parts: list[Profile]) -> Profile:
    """The merge of several window profiles at once (numpy sums; Chan's moments, pooled).

    Equal to folding ``Profile.merge`` over the parts, without one temporary per step: a
    week of hourly profiles merges in one pass.
    """
    if len(parts) == 1:
        return parts[0]
    columns: dict[str, Any] = {}
    for name, first in parts[0].columns.items():
        cols = [p.columns[name] for p in parts]
        if isinstance(first, NumericProfile):
            n = np.array([c.n_values for c in cols], dtype=np.float64)
            total = n.sum()
            means = np.array([c.mean if c.n_values else 0.0 for c in cols])
            mean = float((n * means).sum() / total) if total else float("nan")
            m2 = float(sum(c.m2 for c in cols) + (n * (means - mean) ** 2).sum()) if total else 0.0
            columns[name] = NumericProfile(
                first.edges, np.sum([c.counts for c in cols], axis=0),
                sum(c.n_rows for c in cols), sum(c.n_missing for c in cols),
                sum(c.n_infinite for c in cols), sum(c.n_invalid for c in cols), mean, m2,
                float(np.fmin.reduce([c.minimum for c in cols])),
                float(np.fmax.reduce([c.maximum for c in cols])),
                np.sum([c.slot_sums for c in cols], axis=0))
        else:
            columns[name] = CategoricalProfile(
                first.categories, np.sum([c.counts for c in cols], axis=0),
                sum(c.n_rows for c in cols), sum(c.n_missing for c in cols))
    return Profile(sum(p.n_rows for p in parts), columns)


class WindowProfiles:
    """Hourly profiles of a model's windows, computed once and merged from the store."""

    def __init__(self, store: MonitoringStore, read_log: ReadLog) -> None:
        self.store = store
        self.read_log = read_log
        self._closed: dict[tuple[str, datetime], Profile] = {}
        """Stored hours already decoded in this process (a stored hour never changes)."""

    def hourly(self, reference: Reference, start: datetime, end: datetime) -> dict[datetime, Profile]:
        """The profile of every hour in [floor(start), end), from the store or the log."""
        first, stop = floor_hour(start), to_utc(end)
        hours = []
        moment = first
        while moment < stop:
            hours.append(moment)
            moment += HOUR
        stored = {h: self._closed[(reference.id, h)] for h in hours
                  if (reference.id, h) in self._closed}
        unknown = [h for h in hours if h not in stored]
        if unknown:
            for hour, data in self._read(reference, unknown[0], unknown[-1] + HOUR).items():
                if hour not in stored:
                    stored[hour] = self._closed[(reference.id, hour)] = _widen(data,
                                                                              reference.profile)
        missing = [h for h in hours if h not in stored]
        if missing:
            log = self.read_log(reference.model, missing[0], missing[-1] + HOUR)
            frame = monitored_frame(log, reference)
            buckets = log["timestamp"].dt.floor("h") if len(log) else pd.Series(dtype=object)
            groups = {to_utc(k): idx for k, idx in frame.groupby(buckets).groups.items()} \
                if len(log) else {}
            done, fresh = utc_now() - GRACE, {}
            empty = build_profile(frame.iloc[:0], reference=reference.profile)  # immutable: shared
            for hour in missing:
                fresh[hour] = build_profile(frame.loc[groups[hour]], reference=reference.profile) \
                    if hour in groups else empty
            stored.update(fresh)
            closed = {h: p for h, p in fresh.items() if h + HOUR <= done}
            if closed:
                self._closed.update({(reference.id, h): p for h, p in closed.items()})
                self.store.write_profiles(reference.model, reference.id, 3600,
                                          {h: _slim(p) for h, p in closed.items()})
        return {h: stored[h] for h in hours}

    def _read(self, reference: Reference, start: datetime, end: datetime
              ) -> dict[datetime, dict[str, Any]]:
        return self.store.read_profiles(reference.model, reference.id, 3600, start, end)

    def window(self, reference: Reference, start: datetime, end: datetime) -> Profile:
        """The merged profile of [start, end) (hour-aligned)."""
        profiles = list(self.hourly(reference, start, end).values())
        if not profiles:
            return build_profile(reference.frame.iloc[:0], reference=reference.profile)
        return merge_many(profiles)


def performance(labeled: pd.DataFrame, reference: Reference
                ) -> tuple[int, ClassificationMetrics | RegressionMetrics | None]:
    """Realized metrics on the rows with a label, and how many there were."""
    rows = labeled[labeled["label"].notna()] if "label" in labeled.columns else labeled.iloc[:0]
    if rows.empty:
        return 0, None
    output = log_outputs(rows, reference.task).to_numpy(dtype=np.float64)
    truth = pd.to_numeric(rows["label"], errors="coerce").to_numpy(dtype=np.float64)
    if reference.task == "classification":
        result = classification_metrics(truth, output, threshold=reference.threshold)
        return result.n_labeled, result
    result_r = regression_metrics(truth, output)
    return result_r.n_labeled, result_r


def estimate(rows: pd.DataFrame, reference: Reference) -> EstimatedPerformance | None:
    """CBPE's estimate for the window's scores (None for regressors or without calibration)."""
    if reference.cbpe is None or reference.task != "classification" or rows.empty:
        return None
    scores = log_outputs(rows, reference.task).to_numpy(dtype=np.float64)
    return reference.cbpe.estimate(scores) if np.isfinite(scores).any() else None


def window_report(reference: Reference, profile: Profile, labeled: pd.DataFrame, start: datetime,
                  end: datetime) -> WindowReport:
    """Drift and quality from the window's profile; performance from its labeled rows."""
    n_labeled, realized = performance(labeled, reference)
    return WindowReport(to_utc(start), to_utc(end), profile.n_rows, profile,
                        drift_from_profiles(reference.profile, profile),
                        data_quality(reference.profile, profile), n_labeled, realized,
                        estimate(labeled, reference))
