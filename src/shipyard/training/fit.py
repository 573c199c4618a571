"""Train on the earliest rows of a dataset and evaluate on the later ones (never shuffled)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError
from shipyard.training.estimators import class_path, prepare, task_of
from shipyard.training.metrics import evaluate
from shipyard.training.split import SplitSpec

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.models import ModelVersion
    from shipyard.training.datasets import TrainingDataset

HOLDOUTS = ("validation", "test")


@dataclass(frozen=True)
class Trained:
    """A model fitted on the train split, with its holdout metrics."""

    model: Any
    task: str
    features: tuple[str, ...]
    sizes: dict[str, int]
    cutoffs: tuple[datetime, ...]
    dropped_late_labels: int
    metrics: dict[str, float]  # "<split>_<metric>", e.g. validation_auc, test_rmse
    preprocessing: tuple[str, ...]

    def params(self) -> dict[str, object]:
        """What a run records about this training, besides the estimator's own params."""
        return {"task": self.task, "features": ",".join(self.features),
                "preprocessing": ",".join(self.preprocessing) or "none",
                "split.cutoffs_used": ",".join(c.isoformat() for c in self.cutoffs),
                "split.dropped_late_labels": self.dropped_late_labels,
                **{f"rows.{k}": v for k, v in self.sizes.items()}}


@dataclass(frozen=True)
class FitResult:
    """What `project.training.fit` did: the model, its metrics, run, dataset and version."""

    model: Any  # the fitted estimator, or the Pipeline around it
    task: str
    metrics: dict[str, float]
    run_id: str
    dataset: TrainingDataset
    version: ModelVersion | None
    features: tuple[str, ...]
    sizes: dict[str, int] = field(default_factory=dict)
    cutoffs: tuple[datetime, ...] = ()

    @property
    def ref(self) -> str | None:
        """`name/version` of the registered version (None when not registered)."""
        return None if self.version is None else self.version.ref


def train(estimator: Any, frame: pd.DataFrame, *, features: Sequence[str], label: str,
          split: SplitSpec, threshold: float = 0.5) -> Trained:
    """Fit a clone of `estimator` on the train split of `frame`; score the later splits."""
    task = task_of(estimator)
    columns = list(features)
    if frame[label].isna().any():
        raise InvalidInputError(f"Label {label!r} is missing in {int(frame[label].isna().sum())} "
                                "rows.", hint="Drop rows without a label before training.")
    parts = split.apply(frame)
    if parts.train.empty or (parts.validation.empty and parts.test.empty):
        raise InvalidInputError(f"The time split gives {parts.sizes}: training needs rows on "
                                "both sides of the cutoff.",
                                hint="Use other fractions or cutoffs, or more labelled rows.")
    model, steps = prepare(estimator, parts.train[columns])
    try:
        model.fit(parts.train[columns], parts.train[label])
    except ValueError as exc:
        raise InvalidInputError(f"{class_path(estimator)} could not fit the train split: {exc}",
                                hint="Check the label and the training rows.") from exc
    metrics = {}
    for name in HOLDOUTS:
        rows = getattr(parts, name)
        if len(rows):
            scores = evaluate(model, task, rows[columns], rows[label], threshold=threshold)
            metrics.update({f"{name}_{k}": v for k, v in scores.items()})
    return Trained(model, task, tuple(columns), parts.sizes, parts.cutoffs,
                   parts.dropped_late_labels, metrics, tuple(steps))
