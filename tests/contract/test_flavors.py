"""Flavors: scikit-learn, LightGBM, XGBoost, ONNX and opt-in pickles round-trip the registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard as sy

rng = np.random.default_rng(3)
# float32-exact values: ONNX runs in float32, so a tree split then sees the same numbers
X = pd.DataFrame({"a": rng.normal(size=150).astype(np.float32).astype(np.float64),
                  "b": rng.integers(0, 10, 150)})
Y = ((X["a"] + X["b"] / 5 + rng.normal(size=150) * 0.3) > 1).astype(int)


def _sklearn() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)


def _lightgbm() -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1).fit(X, Y)


def _lightgbm_regressor() -> Any:
    import lightgbm

    return lightgbm.LGBMRegressor(n_estimators=15, num_leaves=7, verbose=-1).fit(X, X["a"] * 2)


def _xgboost() -> Any:
    import xgboost

    return xgboost.XGBClassifier(n_estimators=15, max_depth=3).fit(X, Y)


TRAIN: dict[str, Callable[[], Any]] = {"sklearn": _sklearn, "lightgbm": _lightgbm,
                                       "xgboost": _xgboost}


@pytest.fixture
def project(tmp_path: Path) -> sy.Project:
    (tmp_path / "shipyard.yaml").write_text("project: flavors\n")
    return sy.Project.load(tmp_path)


@pytest.mark.parametrize("flavor", sorted(TRAIN))
def test_each_flavor_predicts_like_the_native_model(project: sy.Project, flavor: str) -> None:
    native = TRAIN[flavor]()
    mv = project.models.register("m", native, signature=X.head())
    assert mv.flavor == flavor and mv.signature.output == sy.models.Column("prediction", sy.Int64)
    model = project.models.load("m")
    assert model.has_proba
    np.testing.assert_array_equal(model.predict(X), native.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), native.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("train", [_sklearn, _lightgbm, _lightgbm_regressor])
def test_onnx_predictions_equal_native_within_1e_5(project: sy.Project,
                                                   train: Callable[[], Any]) -> None:
    native = train()
    project.models.register("m", native, signature=X.head(), onnx=True)
    model = project.models.load("m")
    onnx = project.models.load("m", runtime="onnx")
    assert model.version.has_onnx and onnx.runtime == "onnx"
    np.testing.assert_allclose(onnx.predict(X), model.predict(X), atol=1e-5)
    if model.has_proba:
        np.testing.assert_allclose(onnx.predict_proba(X), model.predict_proba(X), atol=1e-5)


def test_onnx_is_refused_for_other_flavors_and_text_inputs(project: sy.Project) -> None:
    with pytest.raises(sy.InvalidInputError, match="Cannot convert a 'xgboost' model to ONNX"):
        project.models.register("m", _xgboost(), signature=X.head(), onnx=True)
    with pytest.raises(sy.InvalidInputError, match=r"needs numeric inputs; \['b'\]"):
        project.models.register("m", _sklearn(), signature=X.head().astype({"b": str}), onnx=True)
    project.models.register("m", _sklearn(), signature=X.head())
    with pytest.raises(sy.NotFoundError, match="has no ONNX copy"):
        project.models.load("m", runtime="onnx")


class Doubler:
    """A plain Python model (picklable: defined at module level)."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["a"].to_numpy() * 2


def test_plain_objects_need_the_pickle_opt_in(project: sy.Project) -> None:
    with pytest.raises(sy.InvalidInputError, match="unpickling runs its code") as info:
        project.models.register("m", Doubler(), signature=X.head())
    assert "allow_pickle=True" in (info.value.hint or "")
    with pytest.raises(sy.InvalidInputError, match="unpickling runs its code"):
        project.models.register("m", Doubler(), signature=X.head(), flavor="python")
    mv = project.models.register("m", Doubler(), signature=X.head(), allow_pickle=True)
    model = project.models.load("m")
    assert mv.flavor == "python" and not model.has_proba
    np.testing.assert_allclose(model.predict(X), X["a"] * 2)
    with pytest.raises(sy.InvalidInputError, match="does not predict probabilities"):
        model.predict_proba(X)


def test_unfitted_and_unknown_models_are_refused(project: sy.Project) -> None:
    import lightgbm
    from sklearn.linear_model import LogisticRegression

    for unfitted in (LogisticRegression(), lightgbm.LGBMClassifier()):
        with pytest.raises(sy.InvalidInputError, match="is not fitted yet"):
            project.models.register("m", unfitted, signature=X.head())
    with pytest.raises(sy.InvalidInputError, match="has no predict method"):
        project.models.register("m", object(), signature=X.head())


def test_register_and_load_through_the_loopback_s3_store(tmp_path: Path, s3_artifacts: str,
                                                         s3_endpoint: str) -> None:
    (tmp_path / "shipyard.yaml").write_text(
        f"project: s3\nartifacts: {s3_artifacts}\nartifacts_endpoint_url: {s3_endpoint}\n")
    project = sy.Project.load(tmp_path)
    native = _lightgbm()
    project.models.register("m", native, signature=X.head())
    project.models.set_alias("m", "champion", 1)
    np.testing.assert_allclose(project.models.load("m@champion").predict_proba(X),
                               native.predict_proba(X), rtol=1e-6)
