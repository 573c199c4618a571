"""scikit-learn estimators and pipelines, pickled (unpickling imports scikit-learn only)."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.models.flavors.base import Estimator, ModelInfo, Predictor, from_library, plain

# Classifiers whose predict is the class of highest predict_proba (ties aside): predict is
# classes_[argmax(proba)], or a threshold on a raw score that proba maps monotonically. Not
# SVC (Platt-scaled proba), the threshold-tuning wrappers, nor any subclass outside sklearn.
_ARGMAX = {"DecisionTreeClassifier", "ExtraTreeClassifier", "RandomForestClassifier",
           "ExtraTreesClassifier", "GradientBoostingClassifier", "HistGradientBoostingClassifier",
           "LogisticRegression", "LogisticRegressionCV", "GaussianNB", "BernoulliNB",
           "MultinomialNB", "CalibratedClassifierCV", "MLPClassifier"}


def predicts_argmax(model: Any) -> bool:
    """Whether predict is the argmax of predict_proba (a known classifier, or a pipeline ending
    in one), so one predict_proba call gives both."""
    final = model.steps[-1][1] if type(model).__name__ == "Pipeline" else model
    classes = getattr(model, "classes_", None)
    return (type(final).__name__ in _ARGMAX and type(final).__module__.startswith("sklearn.")
            and classes is not None and np.ndim(classes) == 1)


def check_fitted(model: Any) -> None:
    """Refuse an estimator that was never fitted."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise InvalidInputError(f"{type(model).__name__} is not fitted yet.",
                                hint="Call fit(X, y) before registering it.") from None


def task_of(model: Any) -> str:
    """'classifier', 'regressor' or 'other', by scikit-learn's estimator tags."""
    from sklearn.base import is_classifier, is_regressor

    return "classifier" if is_classifier(model) else "regressor" if is_regressor(model) \
        else "other"


class SklearnFlavor:
    """Estimators and pipelines from scikit-learn (or built on its base classes)."""

    name = "sklearn"
    libraries = ("scikit-learn", "numpy", "scipy")
    file = "model.pkl"

    def matches(self, model: object) -> bool:
        return from_library(model, "sklearn") and callable(getattr(model, "predict", None))

    def describe(self, model: Any) -> ModelInfo:
        check_fitted(model)
        task = task_of(model)
        classes = getattr(model, "classes_", None)
        names = getattr(model, "feature_names_in_", None)
        return ModelInfo(task, None if classes is None else plain(classes),  # type: ignore[arg-type]
                         None if names is None else [str(n) for n in names])

    def save(self, model: Any, folder: Path) -> None:
        (folder / self.file).write_bytes(pickle.dumps(model, protocol=5))

    def load(self, data: bytes, manifest: Mapping[str, Any]) -> Predictor:
        model = pickle.loads(data)  # noqa: S301 - a checksummed package we wrote
        return Estimator(model, argmax=predicts_argmax(model))
