"""Estimators for `fit`: build one from a dotted class path, and wrap it for feature frames.

Feature frames hold nulls (no feature row within the ttl) and may hold text columns. What
`prepare` adds, inside one scikit-learn Pipeline so that serving does exactly the same:

* text columns are ordinal-encoded (categories seen in training; unseen or null -> NaN);
* estimators that cannot take NaN (scikit-learn's `allow_nan` tag is False, e.g. linear
  models) get a median `SimpleImputer`, fitted on the training split. Estimators that handle
  NaN themselves (HistGradientBoosting, LightGBM, XGBoost) get the nulls as they are.

With neither needed, the estimator is fitted as it is (so LightGBM stays a LightGBM model).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

_PARAM_TYPES = (str, int, float, bool, type(None))


def load_estimator(path: str, params: Mapping[str, Any] | None = None) -> Any:
    """An estimator from a dotted class path such as 'sklearn.linear_model.LogisticRegression'."""
    module, _, name = path.rpartition(".")
    if not module:
        raise ConfigError(f"Estimator {path!r} is not a dotted class path.",
                          hint="Write e.g. sklearn.ensemble.HistGradientBoostingClassifier.")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"Estimator {path!r} needs module {exc.name!r}, which is not "
                          "installed.", hint=f"pip install the package that provides {module}.",
                          ) from exc
    except AttributeError:
        raise ConfigError(f"Module {module!r} has no {name!r}.",
                          hint="Check the class name and its capitalisation.") from None
    try:
        return cls(**dict(params or {}))
    except TypeError as exc:
        raise ConfigError(f"Cannot build {path} with params {dict(params or {})!r}: {exc}",
                          hint="Use the constructor's parameter names.") from exc


def task_of(estimator: Any) -> str:
    """'classifier' or 'regressor'; anything else cannot be evaluated."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classifier"
    if is_regressor(estimator):
        return "regressor"
    raise InvalidInputError(f"{type(estimator).__name__} is neither a classifier nor a "
                            "regressor.", hint="fit() trains scikit-learn-style classifiers "
                                               "and regressors (sklearn, LightGBM, XGBoost).")


def class_path(estimator: Any) -> str:
    """The dotted path of the estimator's class."""
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


def params_of(estimator: Any) -> dict[str, object]:
    """The estimator's constructor params that are plain values, for a run's params."""
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return {f"estimator.{k}": v for k, v in sorted(params.items())
            if isinstance(v, _PARAM_TYPES)}


def allows_nan(estimator: Any) -> bool:
    """Whether the estimator accepts NaN inputs (scikit-learn's `allow_nan` tag)."""
    try:
        from sklearn.utils import get_tags  # scikit-learn >= 1.6
    except ImportError:
        tags: dict[str, Any] = getattr(estimator, "_get_tags", dict)()
        return bool(tags.get("allow_nan", False))
    return bool(get_tags(estimator).input_tags.allow_nan)


def prepare(estimator: Any, X: pd.DataFrame) -> tuple[Any, list[str]]:
    """A fresh clone of `estimator`, wrapped in what `X` needs; and those steps' names."""
    import numpy as np
    import pandas as pd
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    model = clone(estimator)
    text = [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c])
                                         or pd.api.types.is_bool_dtype(X[c]))]
    steps: list[tuple[str, Any]] = []
    if text:
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import OrdinalEncoder

        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan)
        steps.append(("encode", ColumnTransformer(
            [("text", encoder, text)], remainder="passthrough",
            verbose_feature_names_out=False).set_output(transform="pandas")))
    if not allows_nan(model):
        from sklearn.impute import SimpleImputer

        steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
    if not steps:
        return model, []
    return Pipeline([*steps, ("model", model)]), [name for name, _ in steps]
