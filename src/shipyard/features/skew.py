"""The skew check: online values against offline point-in-time values for the same moment."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.core.time import UTC, utc_now
from shipyard.features.materialize import view_read
from shipyard.features.online_read import ReadPlan

if TYPE_CHECKING:
    from shipyard.features.store import FeatureStore

_BEGINNING = datetime(1900, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Mismatch:
    """One feature of one entity whose online value differs from the offline one."""

    feature: str  # 'view:feature'
    entity: dict[str, Any]
    online: Any
    offline: Any


@dataclass
class SkewReport:
    """The result of a skew check: how much was compared and every mismatch."""

    at: datetime
    entities: int = 0
    values_compared: int = 0
    features: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def is_consistent(self) -> bool:
        return not self.mismatches

    def mismatches_by_feature(self) -> dict[str, int]:
        """Mismatch count of every compared feature (zero included)."""
        counts = Counter(m.feature for m in self.mismatches)
        return {f: counts.get(f, 0) for f in self.features}


def same_value(online: Any, offline: Any, *, rel_tol: float = 1e-6) -> bool:
    """Whether two feature values agree: nulls (None, NaN, NaT) equal, floats within rel_tol."""
    online, offline = _plain(online), _plain(offline)
    if online is None or offline is None:
        return online is None and offline is None
    if isinstance(online, list) or isinstance(offline, list):
        return (isinstance(online, list) and isinstance(offline, list)
                and len(online) == len(offline)
                and all(same_value(a, b, rel_tol=rel_tol) for a, b in
                        zip(online, offline, strict=True)))
    if isinstance(online, float) or isinstance(offline, float):
        return math.isclose(float(online), float(offline), rel_tol=rel_tol, abs_tol=1e-12)
    if isinstance(online, datetime) or isinstance(offline, datetime):
        return pd.Timestamp(online) == pd.Timestamp(offline)
    return bool(online == offline)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def sample_keys(store: FeatureStore, view: str, at: datetime, sample: int,
                seed: int) -> pd.DataFrame:
    """Up to `sample` distinct entity keys with a feature row in the view's ttl window."""
    _, catalog = store.catalog()
    read = view_read(catalog, catalog.feature_views[view])
    start = _BEGINNING if read.ttl_seconds is None else at - timedelta(seconds=read.ttl_seconds)
    rows = store.offline.entity_rows([read], start, at)
    keys = rows.select(list(read.join_keys)).group_by(list(read.join_keys)).aggregate([])
    frame = keys.to_pandas()
    if len(frame) > sample:
        frame = frame.sample(n=sample, random_state=seed)
    return frame.reset_index(drop=True)


def check_skew(store: FeatureStore, *, sample: int = 100, features: Sequence[str] | None = None,
               feature_service: str | None = None, seed: int = 0) -> SkewReport:
    """Compare online and offline values of `sample` entities per view, at the same instant."""
    _, catalog = store.catalog()
    if features is None and feature_service is None:
        features = [f"{v.name}:{f}" for v in catalog.feature_views.values() if v.online
                    for f in v.feature_names]
    plan: ReadPlan = store.online_reader.plan(features, feature_service, False)
    at = utc_now()
    at_us = int(at.timestamp()) * 1_000_000 + at.microsecond
    report = SkewReport(at=at)
    for step in plan.views:
        keys = sample_keys(store, step.name, at, sample, seed)
        refs = [f"{step.name}:{f}" for f in step.features]
        report.features += refs
        if keys.empty:
            continue
        entity_rows = keys.astype(object).to_dict("records")
        view_plan = store.online_reader.plan(refs, None, True)
        online = store.online_reader.read(store.online, view_plan, entity_rows, at_us=at_us)
        offline = store.get_historical_features(keys.assign(event_timestamp=at), features=refs,
                                                full_feature_names=True)
        report.entities += len(keys)
        for ref, column in zip(refs, view_plan.outputs, strict=True):
            name = column[0]
            for i, (a, b) in enumerate(zip(online[name], offline[name].tolist(), strict=True)):
                report.values_compared += 1
                if not same_value(a, b):
                    report.mismatches.append(Mismatch(ref, entity_rows[i], _plain(a), _plain(b)))
    return report
