"""LightGBM models, stored in LightGBM's own text format (portable across versions)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.models.flavors.base import ModelInfo, Predictor, from_library, plain, real_names

if TYPE_CHECKING:
    import pandas as pd


def _booster(model: Any) -> Any:
    if not hasattr(type(model), "fit"):
        return model  # already a Booster
    try:
        return model.booster_
    except Exception as exc:  # LightGBM raises its own NotFittedError type
        raise InvalidInputError(f"{type(model).__name__} is not fitted yet.",
                                hint="Call fit(X, y) before registering it.") from exc


class LightGBMFlavor:
    """LightGBM's scikit-learn models (LGBMClassifier, LGBMRegressor, ...) and Boosters."""

    name = "lightgbm"
    libraries = ("lightgbm", "numpy")
    file = "model.txt"

    def matches(self, model: object) -> bool:
        return from_library(model, "lightgbm")

    def describe(self, model: Any) -> ModelInfo:
        booster = _booster(model)
        classes = getattr(model, "classes_", None) if booster is not model else None
        objective = str(booster.params.get("objective", "") or getattr(model, "objective", ""))
        if classes is not None:
            task = "classifier"
        elif objective.startswith(("binary", "multiclass", "lambdarank", "rank")):
            task = "other"  # a bare Booster's classes are unknown: return raw scores
        else:
            task = "regressor"
        return ModelInfo(task, None if classes is None else plain(classes),
                         real_names(booster.feature_name()))

    def save(self, model: Any, folder: Path) -> None:
        _booster(model).save_model(str(folder / self.file))

    def load(self, data: bytes, manifest: Mapping[str, Any]) -> Predictor:
        import lightgbm

        return BoosterPredictor(lightgbm.Booster(model_str=data.decode()), manifest)


class BoosterPredictor:
    """predict / predict_proba over a LightGBM Booster, with the classes it was trained on."""

    takes_matrix = True  # Booster.predict takes a numpy matrix in feature order as well

    def __init__(self, booster: Any, manifest: Mapping[str, Any]) -> None:
        self.booster = booster
        self.classes = None if manifest.get("classes") is None else np.asarray(
            manifest["classes"])
        self.has_proba = self.classes is not None

    def _proba(self, frame: pd.DataFrame) -> np.ndarray:
        scores = np.asarray(self.booster.predict(frame))
        return np.column_stack([1 - scores, scores]) if scores.ndim == 1 else scores

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.classes is None:
            return np.asarray(self.booster.predict(frame))
        return self.classes[np.argmax(self._proba(frame), axis=1)]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self._proba(frame)

    def predict_both(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels and probabilities from one pass over the trees."""
        if self.classes is None:
            return np.asarray(self.booster.predict(frame)), None
        proba = self._proba(frame)
        return self.classes[np.argmax(proba, axis=1)], proba
