"""The reference a model is watched against: its training split (from lineage) or a past window.

The default reference of a deployed version is the train split of the dataset it was trained
on: the dataset comes from the version's lineage, the split cutoff from its run
(`split.cutoffs_used`), so rows the model was validated on are not part of "normal". Those
later holdout rows, scored by the model, calibrate CBPE. A window of past predictions works
too (`reference: predictions` with `reference_start`/`reference_end`), calibrated on its
labels when it has both classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.hashing import spec_hash
from shipyard.core.time import to_utc
from shipyard.monitoring.performance import CBPE
from shipyard.monitoring.profiles import Profile, build_profile

if TYPE_CHECKING:
    from shipyard.models import Model, ModelRegistry, ModelVersion

SCORE = "score"
"""Classifiers: the logged probability of the positive class, monitored like a feature."""
PREDICTION = "prediction"
MIN_CALIBRATION_ROWS = 200
MAX_ROWS = 50_000
"""Reference rows (and calibration rows) kept: drift tests on 50,000 rows are as decisive as on
millions, and scoring the whole training set would dominate a monitoring run."""
MAX_CALIBRATION_ROWS = 20_000


@dataclass
class Reference:
    """What a model's windows are compared with: rows, their profile, and training figures."""

    id: str
    model: str
    version: ModelVersion
    description: str
    frame: pd.DataFrame
    """The monitored columns (inputs, then the score or prediction)."""
    features: list[str]
    task: str
    """classification (has probabilities) or regression."""
    threshold: float
    training_metrics: dict[str, float] = field(default_factory=dict)
    cbpe: CBPE | None = None
    _profile: Profile | None = None

    @property
    def output(self) -> str:
        """The monitored output column: `score` for classifiers, `prediction` otherwise."""
        return SCORE if self.task == "classification" else PREDICTION

    @property
    def columns(self) -> list[str]:
        """Inputs then the output: every monitored column."""
        return [*self.features, self.output]

    @property
    def profile(self) -> Profile:
        """The reference profile (fixes the bins every window is counted on)."""
        if self._profile is None:
            self._profile = build_profile(self.frame, columns=self.columns)
        return self._profile


def output_values(model: Model, frame: pd.DataFrame, task: str) -> np.ndarray:
    """The model's score (P(positive class)) or prediction for each row."""
    if task == "classification":
        return np.asarray(model.predict_proba(frame), dtype=np.float64)[:, -1]
    return np.asarray(model.predict(frame), dtype=np.float64)


def log_outputs(log: pd.DataFrame, task: str) -> pd.Series:
    """The score (last class probability) or prediction of each prediction-log row."""
    if task == "classification":
        probabilities = log["probabilities"] if "probabilities" in log.columns else None
        if probabilities is None:
            return pd.Series(np.nan, index=log.index)
        last = [float(p[-1]) if p is not None and len(p) else np.nan for p in probabilities]
        return pd.Series(np.asarray(last, dtype=np.float64), index=log.index)
    return pd.to_numeric(log["prediction"], errors="coerce")


def from_training(ref: str, models: ModelRegistry, get_dataset: Callable[[str], Any],
                  get_run: Callable[[str], Any], *, start: datetime | str | None = None,
                  end: datetime | str | None = None) -> Reference:
    """The train split of the deployed version's dataset, with CBPE calibrated on the holdout.

    `start` and `end` narrow the train split further (e.g. to skip a warm-up period).
    """
    version = models.get_version(ref)
    if version.dataset_id is None:
        raise NotFoundError(f"Model version {version.ref!r} has no training dataset in its lineage.",
                            hint="Register it with dataset=..., or set monitoring.reference_start "
                                 "and reference_end in shipyard.yaml to use past predictions.")
    dataset = get_dataset(version.dataset_id)
    model = models.load(version.ref)
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if version.run_id:
        run = get_run(version.run_id)
        params, metrics = dict(run.params), dict(run.metrics)
    frame = dataset.to_pandas()
    features = list(model.input_columns)
    task = "classification" if model.has_proba else "regression"
    cutoffs = [to_utc(c) for c in params.get("split.cutoffs_used", "").split(",") if c]
    stamps = pd.to_datetime(frame[dataset.timestamp], utc=True)
    train = stamps < pd.Timestamp(cutoffs[0]) if cutoffs else pd.Series(True, index=frame.index)
    holdout_rows = ~train
    if start is not None:
        train &= stamps >= pd.Timestamp(to_utc(start))
    if end is not None:
        train &= stamps < pd.Timestamp(to_utc(end))
    if not train.any():
        raise InvalidInputError(f"The reference of {version.ref!r} has no rows"
                                + (f" between {start} and {end}." if start or end else "."),
                                hint="Widen monitoring.reference_start / reference_end.")
    # score only what the reference and the calibration use, at most MAX_ROWS of each
    train, holdout_rows = _at_most(train), _at_most(holdout_rows, MAX_CALIBRATION_ROWS)
    used = train | holdout_rows
    out = frame.loc[used, model.input_columns].copy()
    out[SCORE if task == "classification" else PREDICTION] = output_values(model, out, task)
    train, holdout_rows = train[used], holdout_rows[used]
    frame, stamps = frame.loc[used], stamps[used]
    threshold = float(params.get("threshold", 0.5) or 0.5)
    cbpe = None
    if task == "classification" and dataset.label:
        holdout = holdout_rows if holdout_rows.sum() >= MIN_CALIBRATION_ROWS else train
        cbpe = _fit_cbpe(out.loc[holdout, SCORE], frame.loc[holdout, dataset.label], threshold)
    first, last = stamps[train].min(), stamps[train].max()
    description = (f"training split of dataset {dataset.id[:12]}: {int(train.sum()):,} rows "
                   f"from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}")
    ident = spec_hash({"kind": "training", "version": version.ref, "dataset": dataset.id,
                       "cutoff": cutoffs[0].isoformat() if cutoffs else None,
                       "start": None if start is None else to_utc(start).isoformat(),
                       "end": None if end is None else to_utc(end).isoformat(),
                       "max_rows": MAX_ROWS})[:32]
    columns = [*features, SCORE if task == "classification" else PREDICTION]
    return Reference(ident, version.name, version, description,
                     out.loc[train, columns].reset_index(drop=True), features, task, threshold,
                     {k: float(v) for k, v in metrics.items()}, cbpe)


def from_window(ref: str, models: ModelRegistry, read_labeled: Callable[..., pd.DataFrame],
                start: datetime | str, end: datetime | str) -> Reference:
    """Past predictions of the model in [start, end) as the reference."""
    version = models.get_version(ref)
    model = models.load(version.ref)
    task = "classification" if model.has_proba else "regression"
    log = read_labeled(version.name, start, end)
    if log.empty:
        raise InvalidInputError(f"No predictions of {version.name!r} between {start} and {end}.",
                                hint="Pick a reference window that has traffic.")
    features = [c for c in model.input_columns if c in log.columns]
    out = log[features].copy()
    output = SCORE if task == "classification" else PREDICTION
    out[output] = log_outputs(log, task).to_numpy()
    cbpe = None
    if task == "classification":
        labeled = log["label"].notna()
        labels = pd.to_numeric(log.loc[labeled, "label"], errors="coerce")
        if labeled.sum() >= MIN_CALIBRATION_ROWS and labels.nunique() == 2:
            cbpe = _fit_cbpe(out.loc[labeled, SCORE], labels, 0.5)
    ident = spec_hash({"kind": "window", "version": version.ref, "start": str(to_utc(start)),
                       "end": str(to_utc(end))})[:32]
    return Reference(ident, version.name, version,
                     f"predictions from {to_utc(start):%Y-%m-%d %H:%M} to {to_utc(end):%Y-%m-%d %H:%M}",
                     out.reset_index(drop=True), features, task, 0.5, {}, cbpe)


def _at_most(mask: pd.Series, limit: int | None = None) -> pd.Series:
    """`mask` thinned to at most `limit` (default MAX_ROWS) rows, evenly over time."""
    limit = MAX_ROWS if limit is None else limit
    count = int(mask.sum())
    if count <= limit:
        return mask
    keep = np.flatnonzero(mask.to_numpy())[np.linspace(0, count - 1, limit).astype(np.int64)]
    thinned = pd.Series(False, index=mask.index)
    thinned.iloc[keep] = True
    return thinned


def _fit_cbpe(scores: pd.Series, labels: pd.Series, threshold: float) -> CBPE | None:
    truth = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=np.float64)
    if np.unique(truth[np.isfinite(truth)]).size < 2:
        return None
    return CBPE(threshold=threshold).fit(scores.to_numpy(dtype=np.float64), truth)
