"""What every flavor provides: detect, describe, save and load one kind of model."""

from __future__ import annotations

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
    """A loaded model: predict on the signature's columns (predict_proba when it has one)."""

    has_proba: bool

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...


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


class Estimator:
    """A predictor around any object with sklearn-style `predict` / `predict_proba`."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.has_proba = callable(getattr(model, "predict_proba", None))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(frame))


def no_proba(name: str) -> InvalidInputError:
    """The error for predict_proba on a model without probabilities."""
    return InvalidInputError(f"Model {name!r} does not predict probabilities.",
                             hint="Call predict() instead.")
