"""Running on-demand feature views: one function, the same for training and serving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from shipyard.core.errors import ConflictError, InvalidInputError, ShipyardError
from shipyard.features.catalog import Catalog
from shipyard.features.definitions import OnDemandFeatureView


def input_columns(odfv: OnDemandFeatureView, catalog: Catalog) -> list[str]:
    """The columns an on-demand view's function receives: view features, then request fields."""
    names: list[str] = []
    for proj in odfv.view_inputs:
        names += proj.features or catalog.feature_views[proj.view].feature_names
    for src in odfv.request_sources:
        names += [f.name for f in src.schema]
    return list(dict.fromkeys(names))


def bind_udf(applied: OnDemandFeatureView, found: OnDemandFeatureView | None,
             ) -> Callable[[Any], Any]:
    """The function of an applied on-demand view, taken from the project's code.

    The registry stores a function's source and hash, never pickled code; the code that
    runs is the project's own, and only if it is the code that was applied.
    """
    if found is None or found.udf is None:
        raise ConflictError(
            f"On-demand view {applied.name!r} is applied but not defined in the project's files.",
            hint="Restore its definition, or run `shipyard apply` to remove it.",
        )
    if found.udf_spec.get("code_sha256") != applied.udf_spec.get("code_sha256"):
        raise ConflictError(
            f"The function of on-demand view {applied.name!r} changed since the last apply.",
            hint="Run `shipyard apply` so training and serving use the same code.",
        )
    return found.udf


def run_on_frame(odfv: OnDemandFeatureView, udf: Callable[[Any], Any], frame: pd.DataFrame,
                 columns: list[str]) -> pd.DataFrame:
    """Run the view's function on `frame[columns]`; return its declared features, checked."""
    inputs = frame[columns]
    try:
        if odfv.mode == "python":
            result = pd.DataFrame(udf({c: inputs[c].tolist() for c in columns}))
        else:
            result = udf(inputs.copy())
    except ShipyardError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"On-demand view {odfv.name!r} failed: {type(exc).__name__}: {exc}",
            hint="Fix the transformation function or its input data.",
        ) from exc
    return _checked_output(odfv, result, len(frame))


def _checked_output(odfv: OnDemandFeatureView, result: Any, rows: int) -> pd.DataFrame:
    if not isinstance(result, pd.DataFrame):
        raise InvalidInputError(
            f"On-demand view {odfv.name!r} returned {type(result).__name__}, not a DataFrame.",
            hint="In mode 'pandas' return a DataFrame; in mode 'python' a dict of lists.",
        )
    missing = [f for f in odfv.feature_names if f not in result.columns]
    if missing or len(result) != rows:
        raise InvalidInputError(
            f"On-demand view {odfv.name!r} returned columns {list(result.columns)} and "
            f"{len(result)} rows; expected {list(odfv.feature_names)} and {rows} rows.",
            hint="Return one row per input row with every feature of the view's schema.",
        )
    out = result[list(odfv.feature_names)].reset_index(drop=True)
    for f in odfv.schema:
        dtype = pandas_dtype(f.dtype.arrow)
        if dtype is None:
            continue
        try:
            out[f.name] = out[f.name].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"On-demand feature {odfv.name}:{f.name} is not of type {f.dtype.name}: {exc}",
                hint="Return values of the declared dtype.",
            ) from exc
    return out


_NULLABLE = {"int32": pd.Int32Dtype(), "int64": pd.Int64Dtype(), "bool": pd.BooleanDtype()}


def pandas_dtype(arrow_type: Any) -> Any:
    """The pandas dtype Shipyard uses for an Arrow type (None: pandas' default)."""
    name = str(arrow_type)
    if name.startswith("timestamp"):
        return pd.DatetimeTZDtype("us", "UTC")
    return _NULLABLE.get(name) or {"float": "float32", "double": "float64"}.get(name)


def to_pandas(table: Any) -> pd.DataFrame:
    """An Arrow table as pandas, keeping integers and booleans nullable instead of float."""
    return table.to_pandas(types_mapper=lambda t: _NULLABLE.get(str(t)))
