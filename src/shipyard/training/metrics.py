"""Holdout metrics: AUC, log loss, precision/recall/F1 for classifiers; RMSE, MAE for regressors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def evaluate(model: Any, task: str, X: pd.DataFrame, y: pd.Series, *,
             threshold: float = 0.5) -> dict[str, float]:
    """Metrics of a fitted model on (X, y); undefined ones (one class only) are NaN.

    Binary classifiers predict the second class of `classes_` when its probability is at
    least `threshold`; multi-class ones take the most likely class and average per class.
    """
    if task == "classifier":
        return _classifier(model, X, y, threshold)
    return _regressor(model.predict(X), y)


def _classifier(model: Any, X: pd.DataFrame, y: pd.Series, threshold: float) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    classes = np.asarray(model.classes_)
    proba = np.asarray(model.predict_proba(X))
    truth = np.asarray(y)
    if len(classes) == 2:  # classes_ is sorted: the second class is the positive one
        scores = proba[:, 1]
        predicted = np.where(scores >= threshold, classes[1], classes[0])
        auc = _or_nan(lambda: metrics.roc_auc_score(truth, scores))
        prf = metrics.precision_recall_fscore_support(truth, predicted, average="binary",
                                                      pos_label=classes[1], zero_division=0)
    else:
        predicted = classes[proba.argmax(axis=1)]
        auc = _or_nan(lambda: metrics.roc_auc_score(truth, proba, multi_class="ovr",
                                                    labels=classes))
        prf = metrics.precision_recall_fscore_support(truth, predicted, average="macro",
                                                      zero_division=0)
    return {"auc": auc, "log_loss": _or_nan(lambda: metrics.log_loss(truth, proba, labels=classes)),
            "precision": float(prf[0]), "recall": float(prf[1]), "f1": float(prf[2])}


def _regressor(predicted: Any, y: pd.Series) -> dict[str, float]:
    import numpy as np

    errors = np.asarray(predicted, dtype=float) - np.asarray(y, dtype=float)
    return {"rmse": float(np.sqrt(np.mean(errors ** 2))), "mae": float(np.mean(np.abs(errors)))}


def _or_nan(compute: Callable[[], Any]) -> float:
    try:
        return float(compute())
    except ValueError:  # e.g. only one class in the holdout: AUC is undefined
        return math.nan
