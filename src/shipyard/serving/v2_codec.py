"""Open Inference Protocol (v2) tensors: JSON and binary (`binary_tensor_data`) in and out.

A request body is a JSON header, optionally followed by raw tensor bytes: the header's
length is in `Inference-Header-Content-Length`, and each binary input says its size in
`parameters.binary_data_size`. BYTES elements are a 4-byte little-endian length and the
bytes. Answers use the same layout when the client asks for binary outputs.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.models import Column
from shipyard.serving import _json
from shipyard.serving._json import wrong_type

HEADER_LENGTH = "inference-header-content-length"
_NUMPY = {"BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
          "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
          "UINT64": np.uint64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
_NUMERIC = {k for k in _NUMPY if k != "BOOL"}
_BY_DTYPE = {"Int32": "INT32", "Int64": "INT64", "Float32": "FP32", "Float64": "FP64",
             "Bool": "BOOL"}  # every other Shipyard dtype travels as BYTES (text)
_ACCEPTS = {"INT32": _NUMERIC, "INT64": _NUMERIC, "FP32": _NUMERIC, "FP64": _NUMERIC,
            "BOOL": {"BOOL"}, "BYTES": {"BYTES"}}
_LENGTH = struct.Struct("<I")


def datatype(column: Column) -> str:
    """The v2 datatype of a signature column."""
    return _BY_DTYPE.get(column.dtype.name, "BYTES")


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header of a request and the binary data after it."""
    if header_length is None:
        doc, rest = _json.load(body), b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InvalidInputError(f"Header Inference-Header-Content-Length is "
                                    f"{header_length!r}, but the body has {len(body)} bytes.",
                                    hint="Send the length of the JSON part of the body.")
        n = int(header_length)
        doc, rest = _json.load(body[:n]), body[n:]
    if not isinstance(doc, dict):
        raise wrong_type("body", doc, "an inference request object",
                         '{"inputs": [{"name": ..., "shape": [1], "datatype": "FP64", '
                         '"data": [...]}]}')
    return doc, rest


def _bytes_elements(raw: bytes, field: str) -> list[str]:
    out, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInputError(f"{field}: BYTES data ends inside an element length.",
                                    hint="Each element is a 4-byte length, then the bytes.")
        (n,) = _LENGTH.unpack_from(raw, offset)
        out.append(raw[offset + 4:offset + 4 + n].decode("utf-8", "replace"))
        offset += 4 + n
    return out


def decode_inputs(doc: Mapping[str, Any], binary: bytes) -> dict[str, tuple[str, np.ndarray]]:
    """Each input tensor by name: its datatype and its values as an array of its shape."""
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise wrong_type("inputs", inputs, "a non-empty array of tensors",
                         '"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", '
                         '"data": [120.5]}]')
    out, offset = {}, 0
    for i, tensor in enumerate(inputs):
        field = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise wrong_type(field, tensor, "a tensor object", '{"name": ..., "shape": ...}')
        name, kind, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
        if not isinstance(name, str):
            raise wrong_type(f"{field}.name", name, "a string", '"name": "amount"')
        if kind not in _NUMPY and kind != "BYTES":
            raise wrong_type(f"{field}.datatype", kind, f"one of {sorted([*_NUMPY, 'BYTES'])}",
                             '"datatype": "FP64"')
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise wrong_type(f"{field}.shape", shape, "an array of sizes", '"shape": [2]')
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidInputError(f"Field '{field}.parameters.binary_data_size' is "
                                        f"{size!r}; the body has {len(binary) - offset} binary "
                                        "bytes left.", hint="Send each tensor's exact size.")
            raw = binary[offset:offset + size]
            offset += size
            values: Any = _bytes_elements(raw, field) if kind == "BYTES" \
                else np.frombuffer(raw, dtype=_NUMPY[kind])
        elif "data" in tensor:
            values = tensor["data"]
        else:
            raise InvalidInputError(f"Field '{field}.data' is missing.",
                                    hint="Send the values in data, or as binary data.")
        try:
            array: np.ndarray = np.array(values, dtype=object if kind == "BYTES" else _NUMPY[kind])
            out[name] = (kind, array.reshape(shape))
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"Tensor {name!r} ({field}) does not fit its datatype "
                                    f"{kind} and shape {shape}: {exc}.",
                                    hint="Send prod(shape) values of the datatype.") from None
    return out


def tensor_columns(tensors: Mapping[str, tuple[str, np.ndarray]], inputs: Sequence[Column]
                   ) -> tuple[dict[str, list[Any]], int]:
    """The model's input columns from one tensor per column, or from one 2-D tensor."""
    names = [c.name for c in inputs]
    if len(tensors) == 1 and next(iter(tensors)) not in names:
        (name, (kind, array)), = tensors.items()
        if kind not in _NUMERIC or array.ndim != 2 or array.shape[1] != len(names):
            raise InvalidInputError(f"Tensor {name!r} is {kind} of shape {list(array.shape)}; "
                                    f"one tensor must be numeric of shape [rows, {len(names)}].",
                                    hint=f"Or send one tensor per column: {names}.")
        return {n: array[:, j].tolist() for j, n in enumerate(names)}, array.shape[0]
    missing = [n for n in names if n not in tensors]
    if missing:
        raise InvalidInputError(f"Input tensor(s) {missing} are missing.",
                                hint=f"The model takes {names} (GET /v2/models/<name>), or "
                                     f"one [rows, {len(names)}] tensor.")
    columns, rows = {}, None
    for column in inputs:
        kind, array = tensors[column.name]
        if kind not in _ACCEPTS.get(datatype(column), {"BYTES"}):
            raise InvalidInputError(f"Tensor {column.name!r} is {kind}; the model expects "
                                    f"{datatype(column)}.", hint="Send it with that datatype.")
        flat = array.reshape(array.shape[0], -1) if array.ndim > 1 else array
        if flat.ndim != 1 and flat.shape[1] != 1:
            raise InvalidInputError(f"Tensor {column.name!r} has shape {list(array.shape)}; "
                                    "a column is [rows] or [rows, 1].", hint="Reshape it.")
        values = flat.reshape(-1).tolist()
        if rows is not None and len(values) != rows:
            raise InvalidInputError(f"Tensor {column.name!r} has {len(values)} rows, others "
                                    f"{rows}.", hint="Send the same number of rows in each.")
        rows = len(values)
        columns[column.name] = values
    return columns, rows or 0


def output_tensor(name: str, values: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes]:
    """An output tensor (and its binary data when `binary`)."""
    if values.dtype.kind in "OSU":
        kind = "BYTES"
        raw = b"".join(_LENGTH.pack(len(b)) + b for b in (str(v).encode() for v in values.flat))
    else:
        kind = next((k for k, t in _NUMPY.items() if np.dtype(t) == values.dtype), "FP64")
        values = values.astype(_NUMPY[kind], copy=False)
        raw = values.tobytes() if binary else b""
    tensor: dict[str, Any] = {"name": name, "datatype": kind, "shape": list(values.shape)}
    if binary:
        tensor["parameters"] = {"binary_data_size": len(raw)}
        return tensor, raw
    tensor["data"] = values.reshape(-1).tolist()
    return tensor, b""
