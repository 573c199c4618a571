"""`Model.predict_both`: labels and probabilities in one pass, equal to predict / predict_proba."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard as sy

rng = np.random.default_rng(5)
# float32-exact values: ONNX runs in float32, so a tree split sees the same numbers
X = pd.DataFrame({"a": rng.normal(size=200).astype(np.float32).astype(np.float64),
                  "b": rng.integers(0, 10, 200)})
Y = ((X["a"] + X["b"] / 5 + rng.normal(size=200) * 0.3) > 1).astype(int)
Y3 = pd.Series(np.select([X["a"] < -0.5, X["a"] < 0.5], ["low", "mid"], "high"))  # 3 classes


def _pipeline() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)


def _hgb() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, Y)


def _forest_3_classes() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y3)


def _lightgbm() -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1).fit(X, Y)


def _xgboost() -> Any:
    import xgboost

    return xgboost.XGBClassifier(n_estimators=15, max_depth=3).fit(X, Y)


def _xgboost_3_classes() -> Any:
    import xgboost

    return xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, Y3.map(
        {"low": 0, "mid": 1, "high": 2}))


def _threshold() -> Any:  # predict is proba > 0.8, not the most probable class
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import FixedThresholdClassifier

    return FixedThresholdClassifier(LogisticRegression(), threshold=0.8).fit(X, Y)


def _neighbors() -> Any:  # not on the argmax list: predict and predict_proba both run
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=4).fit(X, Y3)


def _regressor() -> Any:
    import lightgbm

    return lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, X["a"] * 2)


TRAIN: dict[str, Callable[[], Any]] = {
    "sklearn-pipeline": _pipeline, "sklearn-hgb": _hgb, "sklearn-forest-3": _forest_3_classes,
    "lightgbm": _lightgbm, "xgboost": _xgboost, "xgboost-3": _xgboost_3_classes,
    "sklearn-threshold": _threshold, "sklearn-knn": _neighbors, "lightgbm-regressor": _regressor}
ONE_PASS = {"sklearn-pipeline", "sklearn-hgb", "sklearn-forest-3", "xgboost", "xgboost-3"}


@pytest.fixture
def project(tmp_path: Path) -> sy.Project:
    (tmp_path / "shipyard.yaml").write_text("project: both\n")
    return sy.Project.load(tmp_path)


def _check_equal(model: sy.models.Model) -> None:
    labels, proba = model.predict_both(X)
    np.testing.assert_array_equal(labels, model.predict(X))
    assert labels.dtype == model.predict(X).dtype
    if model.has_proba:
        assert proba is not None
        np.testing.assert_array_equal(proba, model.predict_proba(X))
    else:
        assert proba is None
    one_labels, one_proba = model.predict_both(X.head(1))  # the serving path's single row
    np.testing.assert_array_equal(one_labels, model.predict(X.head(1)))


@pytest.mark.parametrize("name", sorted(TRAIN))
def test_predict_both_equals_predict_and_predict_proba(project: sy.Project, name: str) -> None:
    project.models.register("m", TRAIN[name](), signature=X.head())
    _check_equal(project.models.load("m"))


@pytest.mark.parametrize("name", sorted(ONE_PASS))
def test_argmax_classifiers_run_the_model_once(project: sy.Project, name: str) -> None:
    project.models.register("m", TRAIN[name](), signature=X.head())
    model = project.models.load("m")
    estimator = model._predictor.model  # type: ignore[attr-defined]
    expected = model.predict(X)

    def refuse(frame: Any) -> Any:
        raise AssertionError("predict_both called predict on an argmax classifier")

    estimator.predict = refuse
    labels, _ = model.predict_both(X)
    np.testing.assert_array_equal(labels, expected)


def test_threshold_classifier_keeps_its_own_predict(project: sy.Project) -> None:
    native = _threshold()
    project.models.register("m", native, signature=X.head())
    model = project.models.load("m")
    labels, proba = model.predict_both(X)
    assert proba is not None
    argmax = native.classes_[proba.argmax(axis=1)]
    assert (argmax != native.predict(X)).any()  # the case that must not use the argmax
    np.testing.assert_array_equal(labels, native.predict(X))


@pytest.mark.parametrize("train", [_pipeline, _lightgbm, _regressor])
def test_onnx_predict_both_is_one_session_run(project: sy.Project,
                                              train: Callable[[], Any]) -> None:
    project.models.register("m", train(), signature=X.head(), onnx=True)
    model = project.models.load("m", runtime="onnx")
    _check_equal(model)
    session = model._predictor.session  # type: ignore[attr-defined]
    runs: list[Any] = []

    class Counting:
        def run(self, outputs: Any, feeds: Any) -> Any:
            runs.append(outputs)
            return session.run(outputs, feeds)

    model._predictor.session = Counting()  # type: ignore[attr-defined]
    model.predict_both(X.head(1))
    assert len(runs) == 1


def test_ties_are_left_to_predict() -> None:
    from shipyard.models.flavors.base import argmax_labels

    classes = np.array([0, 1])
    proba = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    seen: list[Any] = []

    def predict(rows: pd.DataFrame) -> np.ndarray:
        seen.append(rows.index.tolist())
        return np.array([1] * len(rows))

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    np.testing.assert_array_equal(argmax_labels(classes, proba, predict, frame), [1, 1, 0])
    assert seen == [[1]]  # only the tied row, which predict decided


def _hgb_regressor() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=10).fit(X, X["a"] * 2)


@pytest.mark.parametrize(("train", "runtime"), [
    (_hgb, None), (_forest_3_classes, None), (_hgb_regressor, None), (_pipeline, None),
    (_lightgbm, None), (_xgboost, None), (_pipeline, "onnx"), (_lightgbm, "onnx")])
def test_predict_both_matrix_equals_the_frame_path(project: sy.Project, train: Callable[[], Any],
                                                   runtime: str | None) -> None:
    import warnings

    project.models.register("m", train(), signature=X.head(), onnx=runtime == "onnx")
    model = project.models.load("m", **({"runtime": runtime} if runtime else {}))
    assert model.is_numeric
    matrix = X.to_numpy(dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "X does not have valid feature names"
        labels, proba = model.predict_both_matrix(matrix)
    expected_labels, expected_proba = model.predict_both(X)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(proba, expected_proba)


def test_predict_both_matrix_refuses_what_does_not_fit(project: sy.Project) -> None:
    project.models.register("m", _hgb(), signature=X.head())
    model = project.models.load("m")
    with pytest.raises(sy.InvalidInputError, match="float matrix of 2 numeric columns"):
        model.predict_both_matrix(X.to_numpy()[:, :1].astype(np.float64))
    with pytest.raises(sy.InvalidInputError, match="float matrix"):
        model.predict_both_matrix(X.to_numpy().astype(object))
    text = X.assign(b=X["b"].astype(str))
    from sklearn.ensemble import HistGradientBoostingClassifier

    project.models.register("t", HistGradientBoostingClassifier(max_iter=3, categorical_features=[
        "b"]).fit(text.assign(b=text["b"].astype("category")), Y), signature=text.head(),
        allow_pickle=True)
    with pytest.raises(sy.InvalidInputError, match="Call predict_both with a DataFrame"):
        project.models.load("t").predict_both_matrix(X.to_numpy(dtype=np.float64))


def test_a_matrix_twin_only_for_the_fitted_column_order(project: sy.Project) -> None:
    project.models.register("m", _hgb(), signature=X.head())
    loaded = project.models.load("m")
    estimator = loaded._predictor  # type: ignore[attr-defined]
    twin = loaded._matrix  # type: ignore[attr-defined]
    assert twin is not None and not hasattr(twin.model, "feature_names_in_")
    assert list(estimator.model.feature_names_in_) == ["a", "b"]  # the frame path keeps them
    assert estimator.for_matrix(["b", "a"]) is None  # another column order: frames only
    project.models.register("p", _pipeline(), signature=X.head())
    assert project.models.load("p")._matrix is None  # type: ignore[attr-defined]
