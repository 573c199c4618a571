"""Prediction request bodies and v2 tensors: shapes accepted, errors that name the field."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.core.types import dtype_from_name
from shipyard.models import Column
from shipyard.serving.inference import LoadedModel, concat_columns, input_frame
from shipyard.serving.predict_inputs import predict_item
from shipyard.serving.v2_codec import decode_inputs, output_tensor, split_body, tensor_columns

INPUTS = (Column("amount", dtype_from_name("Float64")), Column("n", dtype_from_name("Int64")))
KEYS = {"customer_id": int}
FIELDS = (("amount", dtype_from_name("Float64")),)


def _loaded(inputs: tuple[Column, ...] = INPUTS) -> LoadedModel:
    numeric = all(c.dtype.name in ("Int64", "Float64") for c in inputs)
    return LoadedModel(None, "m", 3, inputs, "svc", numeric, False,  # type: ignore[arg-type]
                       pd.Index([c.name for c in inputs], dtype=object))


def _item(body: Any) -> Any:
    return predict_item(body, _loaded(), KEYS, FIELDS, request_id="r", arrived_us=1)


def test_one_row_a_list_of_rows_and_instances() -> None:
    one = _item({"entities": {"customer_id": 4}, "request": {"amount": 2}})
    assert one.entity_rows == [{"customer_id": 4, "amount": 2}] and one.size == 1
    many = _item([{"entities": {"customer_id": i, "amount": 1.5}} for i in range(3)])
    assert many.size == 3 and many.entity_rows[2] == {"customer_id": 2, "amount": 1.5}
    given = _item({"instances": [{"amount": 1.0, "n": None}, [2.0, 3]]})
    assert given.instances == {"amount": [1.0, 2.0], "n": [None, 3]} and given.size == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"entities": {"customer_id": True}, "request": {"amount": 1}}, "'entities.customer_id'"),
    ([{"entities": {"customer_id": 1}, "request": {"amount": 1}}, {"entities": {}}],
     "'[1].entities.customer_id'"),
    ({"entities": {"customer_id": 1}, "request": {"amount": None}}, "'request.amount'"),
    ({"entities": {"customer_id": 1}, "request": []}, "'request'"),
    ({"instances": [{"amount": "x", "n": 1}]}, "'instances[0].amount'"),
    ({"instances": []}, "'instances'"),
    ("text", "a string"),
])
def test_errors_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        _item(body)
    assert field in error.value.message and error.value.hint


def test_the_frame_follows_the_signature_with_nulls_as_nan() -> None:
    frame = input_frame(_loaded(), {"n": [1, None], "amount": [2.5, 3.0], "extra": [0, 0]})
    assert list(frame.columns) == ["amount", "n"] and np.isnan(frame["n"][1])
    text = (*INPUTS, Column("city", dtype_from_name("String")))
    mixed = input_frame(_loaded(text), {"amount": [1.0], "n": [2], "city": ["x"]})
    assert mixed["city"].tolist() == ["x"] and mixed["n"].dtype == np.float64
    assert concat_columns([({"a": [1]}, 1), ({"b": [2, 3]}, 2)]) == {"a": [1, None, None],
                                                                     "b": [None, 2, 3]}


def test_v2_tensors_json_and_binary() -> None:
    raw = np.array([1.5, 2.5]).tobytes()
    header = (b'{"inputs": [{"name": "amount", "datatype": "FP64", "shape": [2], '
              b'"parameters": {"binary_data_size": 16}}, '
              b'{"name": "n", "datatype": "INT32", "shape": [2, 1], "data": [[1], [2]]}]}')
    doc, binary = split_body(header + raw, str(len(header)))
    columns, rows = tensor_columns(decode_inputs(doc, binary), INPUTS)
    assert rows == 2 and columns == {"amount": [1.5, 2.5], "n": [1, 2]}
    matrix = {"input": ("FP32", np.array([[1, 2], [3, 4]], dtype=np.float32))}
    assert tensor_columns(matrix, INPUTS)[0] == {"amount": [1.0, 3.0], "n": [2.0, 4.0]}
    with pytest.raises(InvalidInputError, match="missing"):
        tensor_columns({"amount": ("FP64", np.array([1.0]))}, INPUTS)
    with pytest.raises(InvalidInputError, match="expects INT64"):
        tensor_columns({"amount": ("FP64", np.array([1.0])),
                        "n": ("BOOL", np.array([True]))}, INPUTS)
    with pytest.raises(InvalidInputError, match="binary_data_size"):
        decode_inputs({"inputs": [{"name": "a", "datatype": "FP64", "shape": [4],
                                   "parameters": {"binary_data_size": 32}}]}, raw)


def test_v2_outputs() -> None:
    tensor, raw = output_tensor("prediction", np.array([1, 0]), binary=True)
    assert tensor == {"name": "prediction", "datatype": "INT64", "shape": [2],
                      "parameters": {"binary_data_size": 16}}
    assert np.frombuffer(raw, np.int64).tolist() == [1, 0]
    text, raw = output_tensor("prediction", np.array(["yes"], dtype=object), binary=True)
    assert text["datatype"] == "BYTES" and raw == struct.pack("<I", 3) + b"yes"
    plain, _ = output_tensor("p", np.array([[0.25, 0.75]]), binary=False)
    assert plain["data"] == [0.25, 0.75] and plain["shape"] == [1, 2]
