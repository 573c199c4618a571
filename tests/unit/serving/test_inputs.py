"""Field-by-field checks of request documents: each error names its field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.core.types import Array, Float64, Int64, UnixTimestamp
from shipyard.serving import _inputs
from shipyard.serving._json import dump, load
from shipyard.serving.errors import BadRequestError


def message(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as info:
        call(*args)
    return info.value.message


def test_feature_selection() -> None:
    assert _inputs.feature_selection({"features": ["a:b"]}) == (["a:b"], None)
    assert _inputs.feature_selection({"feature_service": "s"}) == (None, "s")
    assert "neither" in message(_inputs.feature_selection, {})
    assert "'features[1]'" in message(_inputs.feature_selection, {"features": ["a:b", 2]})
    assert "'feature_service'" in message(_inputs.feature_selection, {"feature_service": 1})


def test_columns_and_row_count() -> None:
    assert _inputs.columns_field({}, "request", required=False, example="") == {}
    with pytest.raises(InvalidInputError, match="'entities' is missing"):
        _inputs.columns_field({}, "entities", required=True, example="")
    with pytest.raises(InvalidInputError, match="'entities.a'"):
        _inputs.columns_field({"entities": {"a": 1}}, "entities", required=True, example="")
    assert _inputs.row_count({"entities": {"a": [1, 2]}, "request": {"b": [3, 4]}}) == 2
    with pytest.raises(InvalidInputError, match="'request.b' has 1 values but 'entities.a'"):
        _inputs.row_count({"entities": {"a": [1, 2]}, "request": {"b": [3]}})


def test_key_column_types() -> None:
    assert _inputs.key_column({"k": [1, None]}, "k", int) == [1, None]
    assert _inputs.key_column({"k": ["a", 2]}, "k", None) == ["a", 2]
    with pytest.raises(InvalidInputError, match=r"'entities.k\[1\]' is a string"):
        _inputs.key_column({"k": [1, "2"]}, "k", int)
    with pytest.raises(InvalidInputError, match=r"'entities.k\[0\]' is a boolean"):
        _inputs.key_column({"k": [True]}, "k", None)
    with pytest.raises(InvalidInputError, match=r"'entities.k\[0\]' is a number"):
        _inputs.key_column({"k": [1.5]}, "k", None)


def test_request_columns_are_checked_against_dtypes() -> None:
    assert _inputs.request_column({}, {"x": [1, 2.5, None]}, "x", Float64) == [1, 2.5, None]
    assert _inputs.request_column({"x": [3]}, {}, "x", Int64) == [3]
    assert _inputs.request_column({}, {"x": [[1, 2]]}, "x", Array(Int64)) == [[1, 2]]
    with pytest.raises(InvalidInputError, match=r"'request.x\[0\]'"):
        _inputs.request_column({}, {"x": [True]}, "x", Float64)
    with pytest.raises(InvalidInputError, match=r"'request.x' is missing"):
        _inputs.request_column({}, {}, "x", Float64)
    stamps = _inputs.request_column({}, {"t": ["2024-05-01T12:00:00", 0]}, "t", UnixTimestamp)
    assert stamps == [datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]


def test_push_columns_from_rows_and_columns() -> None:
    columns, from_rows = _inputs.push_columns({"rows": [{"a": 1}, {"a": 2, "b": "x"}]})
    assert columns == {"a": [1, 2], "b": [None, "x"]} and from_rows
    assert _inputs.push_columns({"columns": {"a": [1]}}) == ({"a": [1]}, False)
    assert "exactly one" in message(_inputs.push_columns, {"rows": [], "columns": {}})
    table = _inputs.push_table({"t": ["2024-05-01T12:00:00+02:00", None], "v": [1, 2]}, ["t"],
                               False)
    assert table.column("t").to_pylist()[0] == datetime(2024, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(InvalidInputError, match=r"'rows\[1\].t'"):
        _inputs.push_table({"t": [1.0, "soon"]}, ["t"], True)
    with pytest.raises(InvalidInputError, match=r"'columns.v' mixes values of types"):
        _inputs.push_table({"v": [1, "a"]}, [], False)


def test_json_in_and_out() -> None:
    with pytest.raises(BadRequestError):
        load(b"{")
    assert load(b'{"a": [1]}') == {"a": [1]}
    import numpy as np
    import pandas as pd

    out = dump({"f": [float("nan"), np.float32(1.5), np.int64(2)],
                "t": [datetime(2024, 1, 1, tzinfo=UTC), pd.Timestamp("2024-01-02", tz="UTC"),
                      pd.NaT]})
    assert load(out) == {"f": [None, 1.5, 2], "t": ["2024-01-01T00:00:00+00:00",
                                                     "2024-01-02T00:00:00+00:00", None]}
