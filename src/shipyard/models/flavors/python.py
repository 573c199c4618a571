"""Any Python object with `predict`, pickled: only with allow_pickle=True (unpickling runs code)."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.models.flavors.base import Estimator, ModelInfo, Predictor


class PythonFlavor:
    """A plain object with `predict(DataFrame)` (and optionally `predict_proba`)."""

    name = "python"
    libraries = ("numpy", "pandas")
    file = "model.pkl"
    needs_opt_in = True

    def matches(self, model: object) -> bool:
        return callable(getattr(model, "predict", None))

    def describe(self, model: Any) -> ModelInfo:
        return ModelInfo("other", extra={"class": f"{type(model).__module__}."
                                                  f"{type(model).__qualname__}"})

    def save(self, model: Any, folder: Path) -> None:
        (folder / self.file).write_bytes(pickle.dumps(model, protocol=5))

    def load(self, data: bytes, manifest: Mapping[str, Any]) -> Predictor:
        return Estimator(pickle.loads(data))  # noqa: S301 - opted in at registration
