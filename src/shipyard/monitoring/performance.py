"""Model performance on labeled rows, and its estimate before labels arrive (CBPE).

Realized metrics drop rows without a label (or score) and report how many were used, so a
figure on ten rows is not read like one on ten thousand. ``CBPE`` (confidence-based
performance estimation, as NannyML does it) calibrates the classifier's scores on a labeled
reference with isotonic regression, then estimates the confusion matrix and ROC curve of an
unlabeled window from the calibrated probabilities alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.errors import InvalidInputError

_LOG_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-width score bin: how many rows, their mean score and their positive rate."""

    lower: float
    upper: float
    n_rows: int
    mean_score: float
    positive_rate: float


@dataclass(frozen=True)
class ClassificationMetrics:
    """Realized binary-classifier metrics on the labeled rows."""

    n_labeled: int
    n_positive: int
    threshold: float
    auc: float
    log_loss: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    ece: float
    """Expected calibration error over ``calibration``."""
    calibration: tuple[CalibrationBin, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class RegressionMetrics:
    """Realized regressor metrics on the labeled rows."""

    n_labeled: int
    rmse: float
    mae: float
    bias: float
    """Mean of prediction minus truth: positive when the model over-predicts."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class EstimatedPerformance:
    """Classifier metrics expected from calibrated scores, without labels."""

    n_rows: int
    threshold: float
    auc: float
    accuracy: float
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _labeled(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays of the rows where both label and score are present."""
    truth = np.asarray(y_true, dtype=np.float64)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.shape != score.shape or truth.ndim != 1:
        raise InvalidInputError(f"Labels and scores must be 1-D and equally long, got shapes "
                                f"{truth.shape!r} and {score.shape!r}.",
                                hint="Pass one label and one score per row (NaN for a missing label).")
    keep = np.isfinite(truth) & np.isfinite(score)
    return truth[keep], score[keep]


def _binary(truth: np.ndarray) -> np.ndarray:
    bad = ~np.isin(truth, (0.0, 1.0))
    if bad.any():
        raise InvalidInputError(f"Binary labels must be 0 or 1; found {truth[bad][0]!r}.",
                                hint="Map the positive class to 1 and the negative class to 0.")
    return truth


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def _confusion_scores(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    return {"accuracy": _ratio(tp + tn, tp + fp + fn + tn), "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn)}


def _roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve for (expected) positive weights in [0, 1] per row."""
    order = np.argsort(-score, kind="stable")
    score, positive = score[order], positive[order]
    last_of_tie = np.append(np.diff(score) != 0, True)
    tps = np.cumsum(positive)[last_of_tie]
    fps = np.cumsum(1.0 - positive)[last_of_tie]
    if tps[-1] <= 0 or fps[-1] <= 0:
        return float("nan")
    tpr = np.concatenate(([0.0], tps / tps[-1]))
    fpr = np.concatenate(([0.0], fps / fps[-1]))
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def calibration_bins(truth: np.ndarray, score: np.ndarray, n_bins: int = 10) -> tuple[CalibrationBin, ...]:
    """Equal-width score bins over [0, 1] with their mean score and positive rate."""
    slot = np.clip((score * n_bins).astype(np.intp), 0, n_bins - 1)
    counts = np.bincount(slot, minlength=n_bins)
    sums = np.bincount(slot, weights=score, minlength=n_bins)
    positives = np.bincount(slot, weights=truth, minlength=n_bins)
    return tuple(CalibrationBin(k / n_bins, (k + 1) / n_bins, int(counts[k]),
                                _ratio(sums[k], counts[k]), _ratio(positives[k], counts[k]))
                 for k in range(n_bins))


def classification_metrics(y_true: ArrayLike, y_score: ArrayLike, *, threshold: float = 0.5,
                           n_bins: int = 10) -> ClassificationMetrics:
    """AUC, log loss, accuracy/precision/recall/F1 at ``threshold``, calibration and ECE."""
    truth, score = _labeled(y_true, y_score)
    truth = _binary(truth)
    predicted = score >= threshold
    tp = float(np.sum(predicted & (truth == 1)))
    fp = float(np.sum(predicted & (truth == 0)))
    fn = float(np.sum(~predicted & (truth == 1)))
    tn = float(np.sum(~predicted & (truth == 0)))
    clipped = np.clip(score, _LOG_EPS, 1 - _LOG_EPS)
    log_loss = float(-np.mean(truth * np.log(clipped) + (1 - truth) * np.log1p(-clipped))) \
        if truth.size else float("nan")
    bins = calibration_bins(truth, score, n_bins)
    ece = sum(b.n_rows * abs(b.mean_score - b.positive_rate) for b in bins if b.n_rows)
    return ClassificationMetrics(
        n_labeled=int(truth.size), n_positive=int(truth.sum()), threshold=threshold,
        auc=_roc_auc(score, truth) if truth.size else float("nan"), log_loss=log_loss,
        **_confusion_scores(tp, fp, fn, tn), ece=_ratio(ece, truth.size), calibration=bins)


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> RegressionMetrics:
    """RMSE, MAE and bias (mean of prediction minus truth) on the labeled rows."""
    truth, pred = _labeled(y_true, y_pred)
    if truth.size == 0:
        return RegressionMetrics(0, float("nan"), float("nan"), float("nan"))
    error = pred - truth
    return RegressionMetrics(int(truth.size), float(np.sqrt(np.mean(error**2))),
                             float(np.mean(np.abs(error))), float(np.mean(error)))


class CBPE:
    """Confidence-based performance estimation: expected metrics from calibrated scores."""

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def fit(self, scores: ArrayLike, labels: ArrayLike) -> CBPE:
        """Calibrate scores to probabilities on a labeled reference (isotonic regression)."""
        from sklearn.isotonic import IsotonicRegression  # heavy import, only when used

        truth, score = _labeled(labels, scores)
        truth = _binary(truth)
        if np.unique(truth).size < 2:
            raise InvalidInputError("CBPE needs both classes in the reference labels.",
                                    hint="Fit on a reference window with positives and negatives.")
        self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        self.calibrator_.fit(score, truth)
        return self

    def calibrate(self, scores: ArrayLike) -> np.ndarray:
        """Calibrated probabilities of the positive class."""
        if not hasattr(self, "calibrator_"):
            raise InvalidInputError("This CBPE instance is not fitted yet.",
                                    hint="Call fit(reference_scores, reference_labels) first.")
        score = np.asarray(scores, dtype=np.float64)
        return np.asarray(self.calibrator_.predict(score[np.isfinite(score)]), dtype=np.float64)

    def estimate(self, scores: ArrayLike) -> EstimatedPerformance:
        """Expected AUC, accuracy, precision, recall and F1 of an unlabeled window."""
        score = np.asarray(scores, dtype=np.float64)
        score = score[np.isfinite(score)]
        prob = self.calibrate(score)
        predicted = score >= self.threshold
        tp, fp = float(prob[predicted].sum()), float((1 - prob[predicted]).sum())
        fn, tn = float(prob[~predicted].sum()), float((1 - prob[~predicted]).sum())
        auc = _roc_auc(score, prob) if score.size else float("nan")
        return EstimatedPerformance(int(score.size), self.threshold, auc,
                                    **_confusion_scores(tp, fp, fn, tn))


def realized_vs_estimated(realized: ClassificationMetrics, estimated: EstimatedPerformance
                          ) -> dict[str, float]:
    """Estimated minus realized, per metric both have."""
    names = ("auc", "accuracy", "precision", "recall", "f1")
    return {name: float(getattr(estimated, name) - getattr(realized, name)) for name in names}

