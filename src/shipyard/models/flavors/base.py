"""What every flavor provides: detect, describe, save and load one kind of model."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

Task = Literal["classifier", "regressor", "other"]
_AUTO_NAMES = re.compile(r"Column_\d+")  # the names LightGBM invents for numpy input


@dataclass(frozen=True)
class ModelInfo:
    """What a flavor learns from a fitted model before saving it."""

    task: Task
    classes: list[Any] | None = None
    feature_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # flavor-specific manifest keys


class Predictor(Protocol):
    """A loaded model: predict on the signature's columns (predict_proba when it has one).

    Optional, looked up with getattr: `predict_both(frame)` (labels and probabilities in one
    pass), `takes_matrix = True` (runs on a float matrix in signature order as well), and
    `for_matrix(names)` (a twin predictor that does).
    """

    has_proba: bool

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...


def predict_both(predictor: Predictor, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels and probabilities (None without them), in one model pass when the predictor can."""
    both = getattr(predictor, "predict_both", None)
    if both is not None:
        return both(frame)  # type: ignore[no-any-return]
    labels = predictor.predict(frame)
    return labels, predictor.predict_proba(frame) if predictor.has_proba else None


def argmax_labels(classes: np.ndarray, proba: np.ndarray, predict: Any, frame: Any) -> np.ndarray:
    """The most probable class of each row, as predict gives it when probabilities rank classes.

    Rows whose top probabilities tie (a score so close to the boundary that the link function
    rounded it to 0.5) are left to `predict`, which decides on the raw score.
    """
    labels = classes[np.argmax(proba, axis=1)]
    if proba.shape[1] > 1:
        top = np.sort(proba, axis=1)
        ties = np.flatnonzero(top[:, -1] == top[:, -2])
        if ties.size:
            rows = frame.iloc[ties] if hasattr(frame, "iloc") else frame[ties]
            labels[ties] = np.asarray(predict(rows))
    return labels


class Flavor(Protocol):
    """One kind of model: how to recognise, describe, save and load it."""

    name: str
    libraries: tuple[str, ...]  # distributions whose versions the manifest records
    file: str  # the file `save` writes in the package folder

    def matches(self, model: object) -> bool: ...
    def describe(self, model: Any) -> ModelInfo: ...
    def save(self, model: Any, folder: Path) -> None: ...
    def load(self, data: bytes, manifest: Mapping[str, Any]) -> Predictor: ...


def from_library(model: object, library: str) -> bool:
    """Whether the model's class (or a base class) comes from `library`."""
    return any(cls.__module__.split(".")[0] == library for cls in type(model).__mro__)


def real_names(names: Any) -> list[str] | None:
    """Feature names a model was fitted with, unless the library made them up."""
    if names is None:
        return None
    names = [str(n) for n in names]
    return None if all(_AUTO_NAMES.fullmatch(n) for n in names) else names


def plain(values: Any) -> list[Any]:
    """numpy scalars and arrays as plain Python lists, for the YAML manifest."""
    return np.asarray(values).tolist()


# scikit-learn estimators that take a matrix straight to their trees or coefficients (no inner
# estimator that checks feature names of its own, no selection of columns by name)
MATRIX_ESTIMATORS = frozenset({
    "DecisionTreeClassifier", "DecisionTreeRegressor", "RandomForestClassifier",
    "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
    "GradientBoostingClassifier", "GradientBoostingRegressor", "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor", "LogisticRegression", "LinearRegression", "Ridge"})


class Estimator:
    """A predictor around any object with sklearn-style `predict` / `predict_proba`.

    `argmax=True` says predict is the most probable of `classes_` (checked by the flavor for
    the estimators it knows): then `predict_both` runs the model once, not twice.
    """

    def __init__(self, model: Any, *, argmax: bool = False) -> None:
        self.model = model
        self.has_proba = callable(getattr(model, "predict_proba", None))
        classes = getattr(model, "classes_", None)
        self.classes = np.asarray(classes) if argmax and self.has_proba and classes is not None \
            else None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(frame))

    def for_matrix(self, names: list[str]) -> Estimator | None:
        """This estimator for float matrices in the order of `names` (None: frames only).

        A plain scikit-learn estimator fitted on a frame with exactly these columns gives the
        same answers on the matrix; a shallow copy without the fitted names skips the frame
        checks (half of a single-row call) and the warning about a matrix without names.
        """
        model = self.model
        if type(model).__name__ not in MATRIX_ESTIMATORS \
                or not type(model).__module__.startswith("sklearn."):
            return None
        fitted = getattr(model, "feature_names_in_", None)
        if fitted is None or [str(n) for n in fitted] != list(names):
            return None
        twin = copy.copy(model)
        del twin.feature_names_in_
        matrix = Estimator(twin)
        matrix.classes = self.classes
        return matrix

    def predict_both(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels and probabilities: one pass when labels are the argmax, else two calls."""
        if self.classes is None:
            return self.predict(frame), self.predict_proba(frame) if self.has_proba else None
        proba = self.predict_proba(frame)
        return argmax_labels(self.classes, proba, self.model.predict, frame), proba


def no_proba(name: str) -> InvalidInputError:
    """The error for predict_proba on a model without probabilities."""
    return InvalidInputError(f"Model {name!r} does not predict probabilities.",
                             hint="Call predict() instead.")
