"""Feature definitions: entities, sources, feature views, on-demand views, feature services.

Constructors only store and type-check their arguments; cross-object checks (unknown entity,
fields missing from a source, ...) happen in `validation.py` when the definitions are applied.
Every class round-trips through a JSON-ready spec, which the registry stores and diffs.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import PurePath
from typing import Any, Literal

from shipyard.core.errors import DefinitionError
from shipyard.core.time import seconds
from shipyard.core.types import Field


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise DefinitionError(
            f"{kind} name {name!r} is not a valid identifier.",
            hint="Use letters, digits and underscores, not starting with a digit.",
        )


def _fields(kind: str, name: str, schema: Sequence[Field]) -> tuple[Field, ...]:
    fields = tuple(schema)
    bad = [f for f in fields if not isinstance(f, Field)]
    if bad:
        raise DefinitionError(
            f"{kind} {name!r} has schema entries that are not sy.Field: {bad!r}.",
            hint="Write the schema as [sy.Field('name', sy.Int64), ...].",
        )
    return fields


@dataclass(frozen=True)
class Entity:
    """A business object features describe (a customer), identified by one or more join keys."""

    name: str
    join_keys: Sequence[str] = ()
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("Entity", self.name)
        keys = tuple(self.join_keys) or (f"{self.name}_id",)
        for key in keys:
            _check_name(f"Join key of entity {self.name!r}", key)
        object.__setattr__(self, "join_keys", keys)

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"name": self.name, "join_keys": list(self.join_keys),
                "description": self.description, "owner": self.owner, "tags": dict(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Entity:
        """Rebuild from `to_spec` output."""
        return cls(spec["name"], spec["join_keys"], spec["description"], spec["owner"],
                   spec["tags"])


@dataclass(frozen=True)
class FileSource:
    """Feature rows in a Parquet or CSV file (or a glob / folder of Parquet files)."""

    path: str
    timestamp_field: str = "event_timestamp"
    created_timestamp_field: str | None = None
    field_mapping: dict[str, str] = field(default_factory=dict)
    file_format: Literal["parquet", "csv"] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        path = str(self.path)
        object.__setattr__(self, "path", path)
        fmt = self.file_format or ("csv" if PurePath(path).suffix.lower() == ".csv" else "parquet")
        if fmt not in ("parquet", "csv"):
            raise DefinitionError(f"FileSource {path!r} has file_format {fmt!r}.",
                                  hint="Use 'parquet' or 'csv'.")
        object.__setattr__(self, "file_format", fmt)

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"kind": "file", "path": self.path, "timestamp_field": self.timestamp_field,
                "created_timestamp_field": self.created_timestamp_field,
                "field_mapping": dict(self.field_mapping), "file_format": self.file_format,
                "name": self.name}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FileSource:
        """Rebuild from `to_spec` output."""
        return cls(spec["path"], spec["timestamp_field"], spec["created_timestamp_field"],
                   spec["field_mapping"], spec["file_format"], spec["name"])


@dataclass(frozen=True)
class PushSource:
    """Live rows pushed by applications; history comes from `batch_source`."""

    name: str
    batch_source: FileSource
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("PushSource", self.name)
        if not isinstance(self.batch_source, FileSource):
            raise DefinitionError(f"PushSource {self.name!r} needs a FileSource as batch_source.",
                                  hint="Pass batch_source=sy.FileSource('data/x.parquet', ...).")

    @property
    def timestamp_field(self) -> str:
        return self.batch_source.timestamp_field

    @property
    def created_timestamp_field(self) -> str | None:
        return self.batch_source.created_timestamp_field

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"kind": "push", "name": self.name, "description": self.description,
                "batch_source": self.batch_source.to_spec()}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> PushSource:
        """Rebuild from `to_spec` output."""
        return cls(spec["name"], FileSource.from_spec(spec["batch_source"]), spec["description"])


Source = FileSource | PushSource


def source_from_spec(spec: dict[str, Any]) -> Source:
    """Rebuild a FileSource or PushSource from its spec."""
    return PushSource.from_spec(spec) if spec["kind"] == "push" else FileSource.from_spec(spec)


def file_source_of(source: Source) -> FileSource:
    """The file that holds a source's history."""
    return source.batch_source if isinstance(source, PushSource) else source


@dataclass(frozen=True)
class RequestSource:
    """Values that arrive with the request (or the entity frame), such as a transaction amount."""

    name: str
    schema: Sequence[Field]

    def __post_init__(self) -> None:
        _check_name("RequestSource", self.name)
        object.__setattr__(self, "schema", _fields("RequestSource", self.name, self.schema))

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"kind": "request", "name": self.name,
                "schema": [f.to_spec() for f in self.schema]}


@dataclass(frozen=True)
class FeatureViewProjection:
    """A subset of one view's features, written `view[["a", "b"]]`."""

    view: str
    features: tuple[str, ...] | None  # None: every feature of the view

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"view": self.view, "features": None if self.features is None
                else list(self.features)}


@dataclass(frozen=True, eq=False)
class FeatureView:
    """A group of features of one or more entities, read from one source, with a ttl."""

    name: str
    entities: Sequence[Entity | str]
    schema: Sequence[Field]
    source: Source
    ttl: timedelta | None = None
    online: bool = True
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("FeatureView", self.name)
        object.__setattr__(self, "schema", _fields("FeatureView", self.name, self.schema))
        object.__setattr__(self, "entities", tuple(self.entities))
        if not isinstance(self.source, FileSource | PushSource):
            raise DefinitionError(
                f"FeatureView {self.name!r} has source {self.source!r}.",
                hint="Use sy.FileSource(...) or sy.PushSource(...).",
            )
        if self.ttl is not None and not isinstance(self.ttl, timedelta):
            raise DefinitionError(f"FeatureView {self.name!r} has ttl {self.ttl!r}.",
                                  hint="Pass a datetime.timedelta, e.g. timedelta(days=2).")

    @property
    def entity_names(self) -> tuple[str, ...]:
        return tuple(e.name if isinstance(e, Entity) else e for e in self.entities)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    def __getitem__(self, features: Sequence[str]) -> FeatureViewProjection:
        """Select some of this view's features, for a feature service or an on-demand view."""
        return FeatureViewProjection(self.name, tuple(features))

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"name": self.name, "entities": list(self.entity_names),
                "schema": [f.to_spec() for f in self.schema], "source": self.source.to_spec(),
                "ttl_seconds": seconds(self.ttl), "online": self.online,
                "description": self.description, "owner": self.owner, "tags": dict(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureView:
        """Rebuild from `to_spec` output."""
        ttl = spec["ttl_seconds"]
        return cls(spec["name"], spec["entities"], [Field.from_spec(f) for f in spec["schema"]],
                   source_from_spec(spec["source"]), None if ttl is None else timedelta(seconds=ttl),
                   spec["online"], spec["description"], spec["owner"], spec["tags"])


def _function_spec(udf: Callable[..., Any]) -> dict[str, str]:
    try:
        code = textwrap.dedent(inspect.getsource(udf))
    except (OSError, TypeError):  # defined in a REPL: fall back to the bytecode
        code = repr(getattr(udf, "__code__", udf).co_code)  # type: ignore[union-attr]
    return {"name": udf.__name__, "code": code,
            "code_sha256": hashlib.sha256(code.encode()).hexdigest()}


@dataclass(frozen=True, eq=False)
class OnDemandFeatureView:
    """Features computed by a Python function from request data and other features.

    The same function runs on the joined training frame and on each online request, so
    training and serving cannot disagree. In mode "pandas" it takes and returns a DataFrame;
    in mode "python" it takes and returns a dict of column name to list (faster online).
    """

    name: str
    sources: Sequence[FeatureView | FeatureViewProjection | RequestSource]
    schema: Sequence[Field]
    udf: Callable[[Any], Any] | None
    mode: Literal["pandas", "python"] = "pandas"
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    udf_spec: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("OnDemandFeatureView", self.name)
        object.__setattr__(self, "schema", _fields("OnDemandFeatureView", self.name, self.schema))
        object.__setattr__(self, "sources", tuple(self.sources))
        if self.mode not in ("pandas", "python"):
            raise DefinitionError(f"OnDemandFeatureView {self.name!r} has mode {self.mode!r}.",
                                  hint="Use mode='pandas' or mode='python'.")
        for src in self.sources:
            if not isinstance(src, FeatureView | FeatureViewProjection | RequestSource):
                raise DefinitionError(
                    f"OnDemandFeatureView {self.name!r} has source {src!r}.",
                    hint="Sources are feature views, view[['a', 'b']] projections or RequestSources.",
                )
        if self.udf is not None:
            object.__setattr__(self, "udf_spec", _function_spec(self.udf))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    @property
    def request_sources(self) -> tuple[RequestSource, ...]:
        return tuple(s for s in self.sources if isinstance(s, RequestSource))

    @property
    def view_inputs(self) -> tuple[FeatureViewProjection, ...]:
        """The feature views this view reads, as projections (None: all features)."""
        return tuple(FeatureViewProjection(s.name, None) if isinstance(s, FeatureView) else s
                     for s in self.sources if not isinstance(s, RequestSource))

    def __getitem__(self, features: Sequence[str]) -> FeatureViewProjection:
        """Select some of this view's features, for a feature service."""
        return FeatureViewProjection(self.name, tuple(features))

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description (the function is kept as its source code and hash)."""
        sources: list[dict[str, Any]] = [
            s.to_spec() if isinstance(s, RequestSource) else {"kind": "view", **s.to_spec()}
            for s in (*self.request_sources, *self.view_inputs)
        ]
        return {"name": self.name, "sources": sources, "mode": self.mode,
                "schema": [f.to_spec() for f in self.schema], "udf": dict(self.udf_spec),
                "description": self.description, "owner": self.owner, "tags": dict(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> OnDemandFeatureView:
        """Rebuild from `to_spec` output, without the function (see `with_udf`)."""
        sources: list[FeatureViewProjection | RequestSource] = []
        for s in spec["sources"]:
            if s["kind"] == "request":
                sources.append(RequestSource(s["name"], [Field.from_spec(f) for f in s["schema"]]))
            else:
                feats = s["features"]
                sources.append(FeatureViewProjection(s["view"], None if feats is None
                                                     else tuple(feats)))
        return cls(spec["name"], sources, [Field.from_spec(f) for f in spec["schema"]], None,
                   spec["mode"], spec["description"], spec["owner"], spec["tags"],
                   dict(spec["udf"]))


def on_demand_feature_view(
    *,
    sources: Sequence[FeatureView | FeatureViewProjection | RequestSource],
    schema: Sequence[Field],
    mode: Literal["pandas", "python"] = "pandas",
    name: str | None = None,
    description: str = "",
    owner: str = "",
    tags: dict[str, str] | None = None,
) -> Callable[[Callable[[Any], Any]], OnDemandFeatureView]:
    """Decorator: turn a transformation function into an OnDemandFeatureView."""

    def wrap(udf: Callable[[Any], Any]) -> OnDemandFeatureView:
        return OnDemandFeatureView(name or udf.__name__, sources, schema, udf, mode, description,
                                   owner, tags or {})

    return wrap


FeatureRef = FeatureView | OnDemandFeatureView | FeatureViewProjection | str


def _projection(ref: FeatureRef, service: str) -> FeatureViewProjection:
    if isinstance(ref, FeatureViewProjection):
        return ref
    if isinstance(ref, FeatureView | OnDemandFeatureView):
        return FeatureViewProjection(ref.name, None)
    if isinstance(ref, str) and ref.count(":") == 1:
        view, feature = ref.split(":")
        return FeatureViewProjection(view, (feature,))
    raise DefinitionError(
        f"FeatureService {service!r} lists {ref!r}, which is not a feature reference.",
        hint="List views, view[['a', 'b']] projections or 'view:feature' strings.",
    )


@dataclass(frozen=True, eq=False)
class FeatureService:
    """The named set of features a model consumes."""

    name: str
    features: Sequence[FeatureRef]
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("FeatureService", self.name)
        merged: dict[str, list[str] | None] = {}
        for proj in (_projection(ref, self.name) for ref in self.features):
            if proj.features is None or merged.get(proj.view, []) is None:
                merged[proj.view] = None
            else:
                names = merged.setdefault(proj.view, [])
                names.extend(f for f in proj.features if f not in names)  # type: ignore[union-attr]
        object.__setattr__(self, "features", tuple(
            FeatureViewProjection(v, None if f is None else tuple(f)) for v, f in merged.items()))

    @property
    def projections(self) -> tuple[FeatureViewProjection, ...]:
        return self.features  # type: ignore[return-value]

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"name": self.name, "features": [p.to_spec() for p in self.projections],
                "description": self.description, "owner": self.owner, "tags": dict(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureService:
        """Rebuild from `to_spec` output."""
        projections = [FeatureViewProjection(p["view"], None if p["features"] is None
                                             else tuple(p["features"])) for p in spec["features"]]
        return cls(spec["name"], projections, spec["description"], spec["owner"], spec["tags"])


Definition = Entity | FeatureView | OnDemandFeatureView | FeatureService
