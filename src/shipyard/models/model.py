"""A loaded model: one `predict(DataFrame) -> ndarray` whatever the flavor, inputs checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.core.errors import InvalidInputError
from shipyard.models.flavors.base import Predictor, no_proba, predict_both
from shipyard.models.signature import Signature

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.models.records import ModelVersion

NUMERIC = frozenset({"Int32", "Int64", "Float32", "Float64"})


class Model:
    """A registered model version, ready to predict on frames that match its signature."""

    def __init__(self, version: ModelVersion, signature: Signature, predictor: Predictor,
                 *, runtime: str, flavor: str) -> None:
        self.version = version
        self.signature = signature
        self.runtime = runtime
        self.flavor = flavor
        self._predictor = predictor
        self.is_numeric = all(c.dtype.name in NUMERIC for c in signature.inputs)
        self._columns: pd.Index | None = None  # built on first use (pandas is not imported here)
        # what runs on a float matrix: the predictor itself, a twin of it, or (None) a frame
        self._matrix: Predictor | None = None
        if self.is_numeric:
            twin = getattr(predictor, "for_matrix", None)
            self._matrix = predictor if getattr(predictor, "takes_matrix", False) else \
                twin(signature.names) if twin is not None else None

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

    def predict_both(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and class probabilities (None without them), validating once and, where
        the flavor allows it, running the model once; equal to predict and predict_proba."""
        return predict_both(self._predictor, self.signature.validate(frame))

    def predict_both_matrix(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """predict_both on a float matrix of every input in signature order (numeric models).

        The hot path of the model server: flavors that run on a matrix (ONNX, LightGBM, plain
        scikit-learn estimators) get it as it is, the others a DataFrame over it; a float
        matrix of the signature's columns always passes `Signature.validate`, so it is not
        checked column by column again.
        """
        names = self.signature.names
        if not self.is_numeric or getattr(matrix, "ndim", 0) != 2 \
                or matrix.shape[1] != len(names) or matrix.dtype.kind != "f":
            raise InvalidInputError(
                f"predict_both_matrix takes a float matrix of {len(names)} numeric columns; got "
                f"{getattr(matrix, 'shape', type(matrix).__name__)} for a model whose inputs are "
                f"{[c.to_spec() for c in self.signature.inputs]}.",
                hint="Call predict_both with a DataFrame instead.")
        if self._matrix is not None:
            return predict_both(self._matrix, matrix)  # type: ignore[arg-type]
        import pandas as pd

        if self._columns is None:
            self._columns = pd.Index(names, dtype=object)
        return predict_both(self._predictor, pd.DataFrame(matrix, columns=self._columns,
                                                          copy=False))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities for each row (classifiers only)."""
        if not self.has_proba:
            raise no_proba(self.version.ref)
        return self._predictor.predict_proba(self.signature.validate(frame))
