"""Feature value types (dtypes) and the Field that names one column of a schema."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import DefinitionError

if TYPE_CHECKING:
    import pyarrow as pa

_INTS_32 = {"TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT"}
_INTS_64 = _INTS_32 | {"BIGINT", "UINTEGER"}
_FLOATS = {"FLOAT", "DOUBLE"} | _INTS_64 | {"HUGEINT", "UBIGINT"}
_TIMESTAMPS = {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS",
               "TIMESTAMP_S", "DATE"}


@cache
def _arrow_type(factory: str, args: tuple[str, ...]) -> pa.DataType:
    import pyarrow as pa  # imported on first use: reading a model's signature needs no Arrow

    return getattr(pa, factory)(*args)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class DType:
    """A scalar feature type: how it is stored (Arrow, DuckDB) and which sources fit it."""

    name: str
    arrow_factory: tuple[str, ...]  # the pyarrow function and its arguments, e.g. ("int64",)
    sql: str
    accepts: frozenset[str]

    @property
    def arrow(self) -> pa.DataType:
        """The Arrow type."""
        return _arrow_type(self.arrow_factory[0], self.arrow_factory[1:])

    def accepts_sql(self, source_type: str) -> bool:
        """Whether a source column of DuckDB type `source_type` can feed this dtype."""
        base = source_type.upper()
        if base.startswith("DECIMAL"):
            base = "DECIMAL"
        return base in self.accepts

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Array:
    """A list of one scalar dtype, e.g. `Array(Float64)` for an embedding."""

    element: DType

    @property
    def name(self) -> str:
        return f"Array({self.element.name})"

    @property
    def arrow(self) -> pa.DataType:
        import pyarrow as pa

        return pa.list_(self.element.arrow)

    @property
    def sql(self) -> str:
        return f"{self.element.sql}[]"

    def accepts_sql(self, source_type: str) -> bool:
        """Whether a source list column fits this array type."""
        match = re.fullmatch(r"(.+)\[\]", source_type.strip())
        return bool(match) and self.element.accepts_sql(match.group(1))

    def __repr__(self) -> str:
        return self.name


Int32 = DType("Int32", ("int32",), "INTEGER", frozenset(_INTS_32))
Int64 = DType("Int64", ("int64",), "BIGINT", frozenset(_INTS_64))
Float32 = DType("Float32", ("float32",), "FLOAT", frozenset(_FLOATS | {"DECIMAL"}))
Float64 = DType("Float64", ("float64",), "DOUBLE", frozenset(_FLOATS | {"DECIMAL"}))
String = DType("String", ("string",), "VARCHAR", frozenset({"VARCHAR"}))
Bool = DType("Bool", ("bool_",), "BOOLEAN", frozenset({"BOOLEAN"}))
UnixTimestamp = DType("UnixTimestamp", ("timestamp", "us", "UTC"), "TIMESTAMPTZ",
                      frozenset(_TIMESTAMPS))

FeatureType = DType | Array
SCALARS: dict[str, DType] = {t.name: t for t in (Int32, Int64, Float32, Float64, String, Bool,
                                                  UnixTimestamp)}


def dtype_from_name(name: str) -> FeatureType:
    """Parse 'Int64' or 'Array(Float32)' back into a dtype."""
    match = re.fullmatch(r"Array\((\w+)\)", name)
    scalar = SCALARS.get(match.group(1) if match else name)
    if scalar is None:
        raise DefinitionError(
            f"Unknown dtype {name!r}.", hint=f"Use one of {sorted(SCALARS)} or Array(<one of them>)."
        )
    return Array(scalar) if match else scalar


@dataclass(frozen=True)
class Field:
    """One named, typed column of a feature view or request schema."""

    name: str
    dtype: FeatureType
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise DefinitionError(
                f"Field name {self.name!r} is not a valid identifier.",
                hint="Use letters, digits and underscores, not starting with a digit.",
            )
        if not isinstance(self.dtype, DType | Array):
            raise DefinitionError(
                f"Field {self.name!r} has dtype {self.dtype!r}, which is not a Shipyard dtype.",
                hint="Use sy.Int64, sy.Float64, sy.String, sy.Bool, sy.UnixTimestamp, sy.Array(...).",
            )

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description of the field."""
        return {"name": self.name, "dtype": self.dtype.name, "description": self.description,
                "tags": dict(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Field:
        """Rebuild a field from `to_spec` output."""
        return cls(spec["name"], dtype_from_name(spec["dtype"]), spec.get("description", ""),
                   dict(spec.get("tags", {})))
