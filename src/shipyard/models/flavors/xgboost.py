"""XGBoost's scikit-learn models, stored in XGBoost's UBJSON format."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.models.flavors.base import Estimator, ModelInfo, Predictor, from_library, plain

_CLASSES = {"XGBClassifier", "XGBRFClassifier"}
_PROBA_OBJECTIVES = {"binary:logistic", "multi:softprob"}  # predict is the argmax of these


class XGBoostFlavor:
    """XGBClassifier, XGBRegressor and the other XGBModel subclasses."""

    name = "xgboost"
    libraries = ("xgboost", "numpy")
    file = "model.ubj"

    def matches(self, model: object) -> bool:
        return from_library(model, "xgboost")

    def describe(self, model: Any) -> ModelInfo:
        if not hasattr(model, "get_booster"):
            raise InvalidInputError(f"{type(model).__name__} is a bare XGBoost object.",
                                    hint="Register an XGBClassifier or XGBRegressor.")
        try:
            model.get_booster()
        except Exception as exc:  # xgboost raises NotFittedError of its own
            raise InvalidInputError(f"{type(model).__name__} is not fitted yet.",
                                    hint="Call fit(X, y) before registering it.") from exc
        names = getattr(model, "feature_names_in_", None)
        is_classifier = type(model).__name__ in _CLASSES or hasattr(model, "classes_")
        classes = getattr(model, "classes_", None)
        return ModelInfo("classifier" if is_classifier else "regressor",
                         None if classes is None else plain(classes),
                         None if names is None else [str(n) for n in names],
                         {"estimator": type(model).__name__})

    def save(self, model: Any, folder: Path) -> None:
        model.save_model(str(folder / self.file))

    def load(self, data: bytes, manifest: Mapping[str, Any]) -> Predictor:
        import xgboost

        cls = getattr(xgboost, manifest.get("estimator", "XGBRegressor"))
        model = cls()
        model.load_model(bytearray(data))
        argmax = cls.__name__ in _CLASSES and model.get_params().get("objective") in \
            _PROBA_OBJECTIVES
        return Estimator(model, argmax=argmax)
