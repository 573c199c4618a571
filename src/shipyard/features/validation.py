"""Checks across definitions, run before anything is stored: all problems at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shipyard.core.errors import DefinitionError, ShipyardError
from shipyard.core.hashing import canonical_json
from shipyard.features.catalog import KINDS, Catalog
from shipyard.features.definitions import (
    Definition,
    FeatureService,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    PushSource,
    file_source_of,
)

DescribeSource = Callable[[FileSource], dict[str, str]]
_TIMESTAMP_TYPES = ("TIMESTAMP", "DATE")


def validate(definitions: Sequence[Definition], describe: DescribeSource) -> Catalog:
    """Check the definitions together and return their catalog, or raise DefinitionError."""
    problems = _duplicates(definitions)
    catalog = Catalog.of(definitions)
    for view in catalog.feature_views.values():
        problems += _check_view(view, catalog, describe)
    problems += _check_push_sources(catalog)
    for odfv in catalog.on_demand_feature_views.values():
        problems += _check_on_demand(odfv, catalog)
    for service in catalog.feature_services.values():
        problems += _check_service(service, catalog)
    if problems:
        raise DefinitionError(
            f"{len(problems)} problem(s) in the definitions; nothing was stored:\n"
            + "\n".join(f"  - {p}" for p in problems),
            hint="Fix the definitions and run `shipyard apply` again.",
        )
    return catalog


def _duplicates(definitions: Sequence[Definition]) -> list[str]:
    seen: dict[tuple[str, str], str] = {}
    problems = []
    for obj in definitions:
        kind = next(k for k, klass in KINDS.items() if isinstance(obj, klass))
        # views and on-demand views share one namespace: 'name:feature' must be unambiguous
        space = "views" if kind in ("feature_views", "on_demand_feature_views") else kind
        spec = canonical_json(obj.to_spec())
        previous = seen.setdefault((space, obj.name), spec)
        if previous != spec:
            problems.append(f"{type(obj).__name__} name {obj.name!r} is defined more than once.")
    return problems


def _check_view(view: FeatureView, catalog: Catalog, describe: DescribeSource) -> list[str]:
    where = f"FeatureView {view.name!r}"
    unknown = [e for e in view.entity_names if e not in catalog.entities]
    if unknown:
        return [f"{where} uses unknown entity {unknown[0]!r}; known entities: "
                f"{sorted(catalog.entities)}."]
    problems = []
    if not view.entity_names:
        problems.append(f"{where} has no entities.")
    if view.ttl is not None and view.ttl.total_seconds() <= 0:
        problems.append(f"{where} has ttl {view.ttl}, which is not positive "
                        "(leave ttl=None for no limit).")
    keys = catalog.join_keys(view)
    problems += [f"{where} has a feature named like its join key {f!r}."
                 for f in view.feature_names if f in keys]
    if not view.schema:
        problems.append(f"{where} has an empty schema.")
    source = file_source_of(view.source)
    try:
        columns = describe(source)
    except ShipyardError as exc:
        return [*problems, f"{where}: {exc.message}"]
    mapping = {feature: column for column, feature in source.field_mapping.items()}

    def column_type(name: str) -> str | None:
        return columns.get(mapping.get(name, name))

    for key in keys:
        if column_type(key) is None:
            problems.append(f"{where}: join key {key!r} is not a column of {source.path!r}.")
    for label, name in (("timestamp_field", source.timestamp_field),
                        ("created_timestamp_field", source.created_timestamp_field)):
        if name is None:
            continue
        found = column_type(name)
        if found is None:
            problems.append(f"{where}: {label} {name!r} is not a column of {source.path!r}; "
                            f"columns: {sorted(columns)}.")
        elif not found.upper().startswith(_TIMESTAMP_TYPES):
            problems.append(f"{where}: {label} {name!r} has type {found}, not a timestamp.")
    for f in view.schema:
        found = column_type(f.name)
        if found is None:
            problems.append(f"{where}: field {f.name!r} is not a column of {source.path!r}; "
                            f"columns: {sorted(columns)}.")
        elif not f.dtype.accepts_sql(found):
            problems.append(f"{where}: field {f.name!r} is declared {f.dtype.name} but the "
                            f"source column has type {found}.")
    return problems


def _check_push_sources(catalog: Catalog) -> list[str]:
    specs: dict[str, str] = {}
    paths: dict[str, str] = {}  # batch file -> push source: pushes are appended next to it
    problems = []
    for view in catalog.feature_views.values():
        if isinstance(view.source, PushSource):
            spec = canonical_json(view.source.to_spec())
            if specs.setdefault(view.source.name, spec) != spec:
                problems.append(f"PushSource {view.source.name!r} is defined twice, differently.")
            path = view.source.batch_source.path
            other = paths.setdefault(path, view.source.name)
            if other != view.source.name:
                first, second = sorted((other, view.source.name))
                problems.append(f"Push sources {first!r} and {second!r} share the batch file "
                                f"{path!r}; give each its own.")
            if any(ch in path for ch in "*?["):
                problems.append(f"PushSource {view.source.name!r} has a glob as batch_source "
                                f"path ({path!r}); pushes need one file or folder.")
    return sorted(set(problems), key=problems.index)


def _check_on_demand(odfv: OnDemandFeatureView, catalog: Catalog) -> list[str]:
    where = f"OnDemandFeatureView {odfv.name!r}"
    problems = []
    if not odfv.udf_spec:
        problems.append(f"{where} has no function.")
    inputs: dict[str, str] = {}
    for proj in odfv.view_inputs:
        view = catalog.feature_views.get(proj.view)
        if view is None:
            problems.append(f"{where} reads unknown feature view {proj.view!r}; known views: "
                            f"{sorted(catalog.feature_views)}.")
            continue
        for name in proj.features or view.feature_names:
            if name not in view.feature_names:
                problems.append(f"{where} reads unknown feature {proj.view}:{name}.")
            elif inputs.setdefault(name, proj.view) != proj.view:
                problems.append(f"{where} gets input {name!r} from both {inputs[name]!r} and "
                                f"{proj.view!r}; select one with view[[...]].")
    for src in odfv.request_sources:
        for f in src.schema:
            if inputs.setdefault(f.name, src.name) != src.name:
                problems.append(f"{where} gets input {f.name!r} twice ({inputs[f.name]!r} and "
                                f"request source {src.name!r}).")
    if not inputs:
        problems.append(f"{where} has no inputs.")
    return problems


def _check_service(service: FeatureService, catalog: Catalog) -> list[str]:
    where = f"FeatureService {service.name!r}"
    problems = []
    for proj in service.projections:
        view = (catalog.feature_views.get(proj.view)
                or catalog.on_demand_feature_views.get(proj.view))
        if view is None:
            problems.append(f"{where} names unknown view {proj.view!r}.")
            continue
        problems += [f"{where} names unknown feature {proj.view}:{name}; its features are "
                     f"{list(view.feature_names)}." for name in proj.features or ()
                     if name not in view.feature_names]
    if not service.projections:
        problems.append(f"{where} lists no features.")
    return problems
