"""A loaded model: one `predict(DataFrame) -> ndarray` whatever the flavor, inputs checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.models.flavors.base import Predictor, no_proba
from shipyard.models.signature import Signature

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.models.records import ModelVersion


class Model:
    """A registered model version, ready to predict on frames that match its signature."""

    def __init__(self, version: ModelVersion, signature: Signature, predictor: Predictor,
                 *, runtime: str, flavor: str) -> None:
        self.version = version
        self.signature = signature
        self.runtime = runtime
        self.flavor = flavor
        self._predictor = predictor

    def __repr__(self) -> str:
        return f"Model({self.version.ref!r}, flavor={self.flavor!r}, runtime={self.runtime!r})"

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def has_proba(self) -> bool:
        return bool(self._predictor.has_proba)

    @property
    def input_columns(self) -> list[str]:
        return self.signature.names

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predictions for each row; InvalidInputError if columns or dtypes don't fit."""
        return self._predictor.predict(self.signature.validate(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities for each row (classifiers only)."""
        if not self.has_proba:
            raise no_proba(self.version.ref)
        return self._predictor.predict_proba(self.signature.validate(frame))
