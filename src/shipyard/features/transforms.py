"""Running on-demand feature views: one function, the same for training and serving."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from shipyard.core.errors import ConflictError, InvalidInputError, ShipyardError
from shipyard.core.types import Array, Field
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
    if odfv.mode == "python":  # the same dict of lists, nulls as None, as online
        lists = {c: inputs[c].astype(object).where(inputs[c].notna(), None).tolist()
                 for c in columns}
        result = _run_python(odfv, udf, lists, len(frame))
        return _checked_output(odfv, pd.DataFrame({f: result[f] for f in odfv.feature_names}),
                               len(frame))
    return _checked_output(odfv, _call(odfv, udf, inputs.copy()), len(frame))


def run_on_columns(odfv: OnDemandFeatureView, udf: Callable[[Any], Any],
                   columns: dict[str, list[Any]], rows: int, *,
                   dtypes: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    """Run the view's function on a dict of lists (the online path); return its features.

    Mode "python" gets the lists as they are (no pandas); mode "pandas" gets a DataFrame with
    the offline path's dtypes (`dtypes`, by column). Outputs are checked like `run_on_frame`'s
    and come back as lists of plain Python values, None for null.
    """
    if odfv.mode == "pandas":
        frame = pd.DataFrame({c: pd.Series(v, dtype=(dtypes or {}).get(c)) for c, v in
                              columns.items()})
        out = run_on_frame(odfv, udf, frame, list(columns))
        return {f.name: coerce_column(odfv, f, _plain_column(out[f.name])) for f in odfv.schema}
    result = _run_python(odfv, udf, columns, rows)
    return {f.name: coerce_column(odfv, f, result[f.name]) for f in odfv.schema}


def _run_python(odfv: OnDemandFeatureView, udf: Callable[[Any], Any],
                columns: dict[str, list[Any]], rows: int) -> dict[str, Any]:
    result = _call(odfv, udf, columns)
    if not isinstance(result, dict):
        raise InvalidInputError(
            f"On-demand view {odfv.name!r} returned {type(result).__name__}, not a dict.",
            hint="In mode 'python' return a dict of column name to list.",
        )
    _check_shape(odfv, list(result), [_length(v) for v in result.values()], rows)
    return result


def _call(odfv: OnDemandFeatureView, udf: Callable[[Any], Any], inputs: Any) -> Any:
    try:
        return udf(inputs)
    except ShipyardError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"On-demand view {odfv.name!r} failed: {type(exc).__name__}: {exc}",
            hint="Fix the transformation function or its input data.",
        ) from exc


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return -1


def _check_shape(odfv: OnDemandFeatureView, names: list[str], lengths: list[int],
                 rows: int) -> None:
    missing = [f for f in odfv.feature_names if f not in names]
    if missing or any(n != rows for n in lengths):
        got = sorted(set(lengths))
        raise InvalidInputError(
            f"On-demand view {odfv.name!r} returned columns {names} of {got} rows; "
            f"expected {list(odfv.feature_names)} and {rows} rows.",
            hint="Return one row per input row with every feature of the view's schema.",
        )


def _plain_column(series: pd.Series) -> list[Any]:
    """A pandas column as plain Python values: None for nulls, datetime for timestamps."""
    values = series.astype(object).where(series.notna(), None).tolist()
    return [v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in values]


def _coerce(value: Any, dtype: Any) -> Any:
    """One output value as its feature's Python type (None and NaN: None)."""
    given = type(value)
    if value is None or (given is float and value != value):
        return None
    if given is _KINDS.get(dtype.name) and given is not datetime:  # the common case: as declared
        return value
    if isinstance(dtype, Array):
        return [_coerce(v, dtype.element) for v in value]
    kind = _KINDS[dtype.name]
    if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is datetime and isinstance(value, datetime):
        value = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if kind in (str, bool) and isinstance(value, kind):
        return kind(value)
    raise TypeError(value)


def coerce_column(odfv: OnDemandFeatureView, feature: Field, values: Any) -> list[Any]:
    """An on-demand output column as plain values of the feature's type, or InvalidInputError."""
    try:
        return [_coerce(v, feature.dtype) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"On-demand feature {odfv.name}:{feature.name} is not of type "
            f"{feature.dtype.name}: got {exc.args[0]!r}.",
            hint="Return values of the declared dtype.",
        ) from None


_KINDS: dict[str, type] = {"Int32": int, "Int64": int, "Float32": float, "Float64": float,
                           "String": str, "Bool": bool, "UnixTimestamp": datetime}


def _checked_output(odfv: OnDemandFeatureView, result: Any, rows: int) -> pd.DataFrame:
    if not isinstance(result, pd.DataFrame):
        raise InvalidInputError(
            f"On-demand view {odfv.name!r} returned {type(result).__name__}, not a DataFrame.",
            hint="In mode 'pandas' return a DataFrame; in mode 'python' a dict of lists.",
        )
    _check_shape(odfv, list(result.columns), [len(result)], rows)
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
