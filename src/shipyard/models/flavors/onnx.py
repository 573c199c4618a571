"""ONNX: run a model in onnxruntime, and convert scikit-learn and LightGBM models to it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.errors import ConfigError, InvalidInputError
from shipyard.models.flavors.base import ModelInfo, Predictor, from_library, no_proba

if TYPE_CHECKING:
    import pandas as pd

_HINT = "pip install 'shipyard[onnx]'"


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"ONNX support needs {exc.name!r}, which is not installed.",
                          hint=_HINT) from exc


class OnnxFlavor:
    """An onnx.ModelProto, or the ONNX copy of a converted model, run by onnxruntime."""

    name = "onnx"
    libraries = ("onnx", "onnxruntime", "numpy")
    file = "model.onnx"

    def matches(self, model: object) -> bool:
        return from_library(model, "onnx") and type(model).__name__ == "ModelProto"

    def describe(self, model: Any) -> ModelInfo:
        return ModelInfo("other")

    def save(self, model: Any, folder: Path) -> None:
        (folder / self.file).write_bytes(model.SerializeToString())

    def load(self, data: bytes, manifest: Mapping[str, Any]) -> Predictor:
        ort = _require("onnxruntime")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # converters declare batch size 1: a harmless warning
        # One thread, no pool: onnxruntime's default pool (a thread per core, spinning after
        # each run) only contends with the server's own threads on a small or busy machine.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        return OnnxPredictor(session, manifest)


class OnnxPredictor:
    """Feeds the signature's columns as one float32 matrix; label and probability outputs."""

    takes_matrix = True  # a float matrix in signature order runs as it is (no DataFrame)

    def __init__(self, session: Any, manifest: Mapping[str, Any]) -> None:
        self.session = session
        self.input = session.get_inputs()[0].name
        self.outputs = [o.name for o in session.get_outputs()]
        self.is_classifier = manifest.get("task") == "classifier"
        self.has_proba = self.is_classifier and len(self.outputs) > 1

    def _run(self, frame: pd.DataFrame, outputs: list[str] | None = None) -> list[np.ndarray]:
        matrix = frame.astype(np.float32, copy=False) if isinstance(frame, np.ndarray) \
            else frame.to_numpy(dtype=np.float32, na_value=np.nan)
        return self.session.run(outputs, {self.input: matrix})  # type: ignore[no-any-return]

    def _labels(self, first: Any) -> np.ndarray:
        first = np.asarray(first)
        if not self.is_classifier and first.ndim == 2 and first.shape[1] == 1:
            return first[:, 0]  # regressors output an (n, 1) matrix
        return first

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self._labels(self._run(frame, self.outputs[:1])[0])

    def predict_both(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels and probabilities from one session run fetching both outputs."""
        if not self.has_proba:
            return self.predict(frame), None
        labels, proba = self._run(frame, self.outputs[:2])
        return self._labels(labels), np.asarray(proba)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.has_proba:
            raise no_proba("onnx")
        return np.asarray(self._run(frame, self.outputs[1:2])[0])


def _float_inputs(module: str, columns: Sequence[str]) -> list[tuple[str, Any]]:
    tensor = _require(module).FloatTensorType  # each converter wants its own class
    return [("input", tensor([None, len(columns)]))]


def convert_sklearn(model: Any, columns: Sequence[str]) -> bytes:
    """The ONNX bytes of a scikit-learn estimator or pipeline with numeric inputs."""
    to_onnx = _require("skl2onnx").to_onnx
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if hasattr(final, "classes_") else None
    inputs = _float_inputs("skl2onnx.common.data_types", columns)
    return bytes(to_onnx(model, initial_types=inputs, options=options).SerializeToString())


def convert_lightgbm(model: Any, columns: Sequence[str]) -> bytes:
    """The ONNX bytes of a LightGBM model with numeric inputs."""
    convert = _require("onnxmltools").convert_lightgbm
    options = {"zipmap": False} if hasattr(model, "classes_") else {}
    inputs = _float_inputs("onnxmltools.convert.common.data_types", columns)
    return bytes(convert(model, initial_types=inputs, **options).SerializeToString())


CONVERTERS = {"sklearn": convert_sklearn, "lightgbm": convert_lightgbm}


def convert(flavor: str, model: Any, columns: Sequence[str], dtypes: Sequence[str]) -> bytes:
    """Convert a model of `flavor` to ONNX; inputs must be numeric."""
    if flavor not in CONVERTERS:
        raise InvalidInputError(f"Cannot convert a {flavor!r} model to ONNX.",
                                hint=f"ONNX conversion supports {sorted(CONVERTERS)} models.")
    text = [c for c, d in zip(columns, dtypes, strict=True)
            if d not in ("Int32", "Int64", "Float32", "Float64", "Bool")]
    if text:
        raise InvalidInputError(f"ONNX conversion needs numeric inputs; {text!r} are not.",
                                hint="Encode them as numbers first, or register with onnx=False.")
    return CONVERTERS[flavor](model, columns)
