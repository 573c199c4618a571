"""Model flavors by name; `detect_flavor` picks the first that recognises a model."""

from __future__ import annotations

from shipyard.core.errors import InvalidInputError
from shipyard.models.flavors.base import Flavor, ModelInfo, Predictor
from shipyard.models.flavors.lightgbm import LightGBMFlavor
from shipyard.models.flavors.onnx import OnnxFlavor
from shipyard.models.flavors.python import PythonFlavor
from shipyard.models.flavors.scikit_learn import SklearnFlavor
from shipyard.models.flavors.xgboost import XGBoostFlavor

# Order matters: LightGBM and XGBoost models are also scikit-learn estimators.
FLAVORS: dict[str, Flavor] = {f.name: f for f in (
    LightGBMFlavor(), XGBoostFlavor(), SklearnFlavor(), OnnxFlavor(), PythonFlavor())}


def get_flavor(name: str) -> Flavor:
    """The flavor called `name`."""
    if name not in FLAVORS:
        raise InvalidInputError(f"Unknown model flavor {name!r}.",
                                hint=f"Use one of {sorted(FLAVORS)}.")
    return FLAVORS[name]


def detect_flavor(model: object, *, name: str | None = None,
                  allow_pickle: bool = False) -> Flavor:
    """The flavor called `name`, or the first that recognises the model.

    A plain Python object can only be pickled, and unpickling runs code: that needs
    `allow_pickle=True`.
    """
    flavor = get_flavor(name) if name else next(
        (f for f in FLAVORS.values() if f.matches(model)), None)
    if flavor is None:
        raise InvalidInputError(f"{type(model).__name__} has no predict method.",
                                hint="Register a fitted model (sklearn, LightGBM, XGBoost, ONNX).")
    if getattr(flavor, "needs_opt_in", False) and not allow_pickle:
        raise InvalidInputError(
            f"{type(model).__name__} is not a scikit-learn, LightGBM, XGBoost or ONNX model; "
            "it can only be stored pickled, and unpickling runs its code.",
            hint="Pass allow_pickle=True if you trust it (its class must be importable where "
                 "it is loaded).")
    return flavor


__all__ = ["FLAVORS", "Flavor", "ModelInfo", "Predictor", "detect_flavor", "get_flavor"]
