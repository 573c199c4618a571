"""The set of applied definitions, and the resolution of feature references against it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.types import Field
from shipyard.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    OnDemandFeatureView,
)

KINDS: dict[str, type] = {"entities": Entity, "feature_views": FeatureView,
                          "on_demand_feature_views": OnDemandFeatureView,
                          "feature_services": FeatureService}


@dataclass
class Catalog:
    """Entities, feature views, on-demand views and feature services, each by name."""

    entities: dict[str, Entity] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    on_demand_feature_views: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)

    @classmethod
    def of(cls, definitions: Iterable[Definition]) -> Catalog:
        """A catalog of the given objects (duplicates are caught by validation, not here)."""
        catalog = cls()
        for obj in definitions:
            for kind, klass in KINDS.items():
                if isinstance(obj, klass):
                    getattr(catalog, kind)[obj.name] = obj
        return catalog

    def to_spec(self) -> dict[str, list[dict[str, Any]]]:
        """Every definition as JSON-ready specs, sorted by name within each kind."""
        return {kind: [getattr(self, kind)[n].to_spec() for n in sorted(getattr(self, kind))]
                for kind in KINDS}

    @classmethod
    def from_spec(cls, spec: dict[str, list[dict[str, Any]]]) -> Catalog:
        """Rebuild a catalog from `to_spec` output (on-demand views without their functions)."""
        return cls(**{kind: {s["name"]: klass.from_spec(s) for s in spec.get(kind, [])}
                      for kind, klass in KINDS.items()})

    def join_keys(self, view: FeatureView) -> tuple[str, ...]:
        """The join keys of a view, in the order of its entities."""
        keys: list[str] = []
        for name in view.entity_names:
            keys.extend(k for k in self.entities[name].join_keys if k not in keys)
        return tuple(keys)

    def get_feature_service(self, name: str) -> FeatureService:
        """The feature service called `name`, or NotFoundError."""
        try:
            return self.feature_services[name]
        except KeyError:
            raise NotFoundError(
                f"Feature service {name!r} is not defined.",
                hint=f"Known services: {sorted(self.feature_services)}. Did you run `shipyard apply`?",
            ) from None

    def resolve(self, features: Sequence[str] | None = None, feature_service: str | None = None,
                ) -> Request:
        """Turn 'view:feature' references or a feature service into a retrieval request."""
        if (features is None) == (feature_service is None):
            raise InvalidInputError("Pass exactly one of `features` or `feature_service`.",
                                    hint="e.g. features=['customer_stats:txn_count_24h'].")
        if feature_service is not None:
            projections = self.get_feature_service(feature_service).projections
        else:
            if isinstance(features, str) or not features:
                raise InvalidInputError(f"`features` must be a non-empty list, got {features!r}.",
                                        hint="e.g. features=['customer_stats:txn_count_24h'].")
            projections = tuple(_parse_ref(ref) for ref in features)
        request = Request(self)
        for proj in projections:
            request.add(proj)
        return request


def _parse_ref(ref: object) -> FeatureViewProjection:
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise InvalidInputError(f"Feature reference {ref!r} is not of the form 'view:feature'.",
                                hint="Write features as 'view_name:feature_name'.")
    view, feature = ref.split(":")
    return FeatureViewProjection(view, (feature,))


@dataclass
class Request:
    """What one retrieval must compute: view features, on-demand features, output columns."""

    catalog: Catalog
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (view, feature), in order
    view_features: dict[str, list[str]] = field(default_factory=dict)  # to read, incl. inputs
    on_demand: dict[str, list[str]] = field(default_factory=dict)

    def add(self, proj: FeatureViewProjection) -> None:
        """Add a projection: its features become outputs, their inputs get read."""
        cat = self.catalog
        if proj.view in cat.feature_views:
            view = cat.feature_views[proj.view]
            for name in self._checked(proj, view.feature_names):
                self._read(view.name, name)
                self._output(view.name, name)
        elif proj.view in cat.on_demand_feature_views:
            odfv = cat.on_demand_feature_views[proj.view]
            for name in self._checked(proj, odfv.feature_names):
                self._output(odfv.name, name)
            self.on_demand.setdefault(odfv.name, list(odfv.feature_names))
            for inp in odfv.view_inputs:
                view = cat.feature_views[inp.view]
                for name in inp.features or view.feature_names:
                    self._read(view.name, name)
        else:
            known = sorted([*cat.feature_views, *cat.on_demand_feature_views])
            raise NotFoundError(f"Feature view {proj.view!r} is not defined.",
                                hint=f"Known views: {known}. Did you run `shipyard apply`?")

    @staticmethod
    def _checked(proj: FeatureViewProjection, known: tuple[str, ...]) -> tuple[str, ...]:
        names = proj.features or known
        unknown = [n for n in names if n not in known]
        if unknown:
            raise NotFoundError(f"View {proj.view!r} has no feature {unknown[0]!r}.",
                                hint=f"Its features are {list(known)}.")
        return tuple(names)

    def _read(self, view: str, feature: str) -> None:
        names = self.view_features.setdefault(view, [])
        if feature not in names:
            names.append(feature)

    def _output(self, view: str, feature: str) -> None:
        if (view, feature) not in self.outputs:
            self.outputs.append((view, feature))

    @property
    def views(self) -> list[FeatureView]:
        return [self.catalog.feature_views[v] for v in self.view_features]

    @property
    def on_demand_views(self) -> list[OnDemandFeatureView]:
        return [self.catalog.on_demand_feature_views[v] for v in self.on_demand]

    @property
    def join_keys(self) -> tuple[str, ...]:
        """Every join key any requested view needs, in first-seen order."""
        keys: list[str] = []
        for view in self.views:
            keys.extend(k for k in self.catalog.join_keys(view) if k not in keys)
        return tuple(keys)

    @property
    def request_fields(self) -> list[Field]:
        """Request data the on-demand views need from the caller."""
        fields: dict[str, Field] = {}
        for odfv in self.on_demand_views:
            for src in odfv.request_sources:
                fields.update({f.name: f for f in src.schema})
        return list(fields.values())

    def column_names(self, full_feature_names: bool) -> list[str]:
        """Output column names in request order; short names must not collide."""
        names = [f"{v}__{f}" if full_feature_names else f for v, f in self.outputs]
        seen: dict[str, str] = {}
        for (view, _), name in zip(self.outputs, names, strict=True):
            if name in seen:
                raise InvalidInputError(
                    f"Feature {name!r} is requested from both {seen[name]!r} and {view!r}.",
                    hint="Pass full_feature_names=True to get 'view__feature' column names.",
                )
            seen[name] = view
        return names
