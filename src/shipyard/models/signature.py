"""Model signatures: the typed input columns a model needs and its output; input validation."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.core.types import FeatureType, dtype_from_name

if TYPE_CHECKING:
    import pandas as pd

# numpy dtype kinds each Shipyard dtype accepts at prediction time. Numbers of any width are
# interchangeable (features with nulls arrive as floats); text, bools and times are not.
_NUMERIC = "iuf"
_ACCEPTS = {"Int32": _NUMERIC, "Int64": _NUMERIC, "Float32": _NUMERIC, "Float64": _NUMERIC,
            "Bool": "b", "String": "OSU", "UnixTimestamp": "M", "Array": "O"}
_CAST = {"Int32": "int", "Int64": "int", "Float32": "float", "Float64": "float", "Bool": "bool",
         "String": "str", "UnixTimestamp": "'datetime64[ns, UTC]'"}


@dataclass(frozen=True)
class Column:
    """One named, typed column of a signature."""

    name: str
    dtype: FeatureType

    def to_spec(self) -> dict[str, str]:
        """A JSON-ready description."""
        return {"name": self.name, "dtype": self.dtype.name}

    @classmethod
    def from_spec(cls, spec: Mapping[str, str]) -> Column:
        """Rebuild from `to_spec` output."""
        return cls(spec["name"], dtype_from_name(spec["dtype"]))


def is_dataframe(value: object) -> bool:
    """Whether `value` is a pandas DataFrame (never imports pandas: without it, it is not)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def dtype_of(series_dtype: Any, name: str) -> FeatureType:
    """The Shipyard dtype of a pandas/numpy dtype, or InvalidInputError."""
    kind = getattr(series_dtype, "kind", "O")
    if kind == "f":
        return dtype_from_name("Float32" if np.dtype(series_dtype) == np.float32 else "Float64")
    if kind in "iu":
        return dtype_from_name("Int32" if getattr(series_dtype, "itemsize", 8) <= 4 else "Int64")
    if kind == "b":
        return dtype_from_name("Bool")
    if kind == "M":
        return dtype_from_name("UnixTimestamp")
    if kind in "OSU":
        return dtype_from_name("String")
    raise InvalidInputError(f"Column {name!r} has dtype {series_dtype}, which a signature "
                            "cannot describe.", hint="Use numbers, bools, text or timestamps.")


@dataclass(frozen=True)
class Signature:
    """The input columns (in the order the model wants them) and the output column."""

    inputs: tuple[Column, ...]
    output: Column | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        names = [c.name for c in self.inputs]
        if not names or len(set(names)) != len(names):
            raise InvalidInputError(f"Signature inputs {names!r} are empty or repeat a name.",
                                    hint="List each input column once.")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    @classmethod
    def from_frame(cls, example: pd.DataFrame, output: Column | None = None) -> Signature:
        """The signature of an example input frame (every column, in its order)."""
        if not is_dataframe(example):
            raise InvalidInputError(f"An example input must be a DataFrame, not "
                                    f"{type(example).__name__}.", hint="Pass X_train.head().")
        return cls(tuple(Column(str(c), dtype_of(example[c].dtype, str(c)))
                         for c in example.columns), output)

    def select(self, names: Iterable[str], *, source: str) -> Signature:
        """Only the inputs called `names`, in that order (a model trained on a subset)."""
        by_name = {c.name: c for c in self.inputs}
        wanted = list(names)
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise InvalidInputError(
                f"The model was trained on {missing!r}, which {source} does not provide.",
                hint=f"Train on columns of {self.names!r}, or pass signature=<example frame>.")
        return Signature(tuple(by_name[n] for n in wanted), self.output)

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"inputs": [c.to_spec() for c in self.inputs],
                "output": None if self.output is None else self.output.to_spec()}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Signature:
        """Rebuild from `to_spec` output."""
        output = spec.get("output")
        return cls(tuple(Column.from_spec(c) for c in spec["inputs"]),
                   None if output is None else Column.from_spec(output))

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns of `frame`, in order; InvalidInputError when they don't fit."""
        if not is_dataframe(frame):
            raise InvalidInputError(f"Predict takes a DataFrame, not {type(frame).__name__}.",
                                    hint=f"Pass pd.DataFrame with columns {self.names!r}.")
        names, columns = self.names, list(frame.columns)
        # one dtypes lookup, and no column selection when the order already fits: per-column
        # access and frame[names] cost ~1 ms a call in pandas 3, more than a small model
        dtypes = dict(zip(columns, frame.dtypes, strict=True))
        missing = [n for n in names if n not in dtypes]
        if missing:
            raise InvalidInputError(f"The input is missing column(s) {missing!r}.",
                                    hint=f"The model needs {names!r}.")
        for column in self.inputs:
            kind = getattr(dtypes[column.name], "kind", "O")
            if kind not in _ACCEPTS[column.dtype.name.split("(")[0]]:
                cast = _CAST.get(column.dtype.name, "object")
                raise InvalidInputError(
                    f"Column {column.name!r} has dtype {dtypes[column.name]} but the model "
                    f"expects {column.dtype.name}.",
                    hint=f"Convert it, e.g. df[{column.name!r}].astype({cast}).")
        return frame if columns == names else frame[names]
