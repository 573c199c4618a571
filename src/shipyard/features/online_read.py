"""Online reads: a request is resolved once into a plan, then read with one round trip per view.

The hot path touches neither pandas nor pyarrow nor the metadata database: the catalog is
cached and its version re-checked at most every `recheck_seconds`, and plans are cached per
(features or service, full_feature_names) and catalog version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from shipyard.core.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.features.catalog import Catalog, Request
from shipyard.features.definitions import FeatureView, OnDemandFeatureView, file_source_of
from shipyard.features.online import OnlineStore
from shipyard.features.online._codec import checked_key, encode_key, key_kind
from shipyard.features.registry import Registry
from shipyard.features.transforms import input_columns, pandas_dtype, run_on_columns
from shipyard.features.validation import DescribeSource

Udfs = Callable[[Sequence[OnDemandFeatureView]], dict[str, Callable[[Any], Any]]]
_MAX_PLANS = 1_024


class _ViewStep(NamedTuple):
    name: str
    keys: tuple[str, ...]
    kinds: tuple[type | None, ...]
    features: tuple[str, ...]
    columns: tuple[str, ...]  # 'view__feature' for each feature
    ttl_us: int | None


class _OnDemandStep(NamedTuple):
    view: OnDemandFeatureView
    udf: Callable[[Any], Any]
    inputs: tuple[tuple[str, str | None], ...]  # (input, 'view__feature'; None: request data)
    dtypes: dict[str, Any]


@dataclass(frozen=True)
class ReadPlan:
    """What one kind of online request reads and computes, resolved against one catalog."""

    version: int
    join_keys: tuple[str, ...]
    request_fields: tuple[str, ...]
    views: tuple[_ViewStep, ...]
    on_demand: tuple[_OnDemandStep, ...]
    outputs: tuple[tuple[str, str], ...]  # (output column, 'view__feature')


def now_us() -> int:
    """The current time in microseconds since the epoch."""
    return time.time_ns() // 1_000


def ttl_us(view: FeatureView) -> int | None:
    """A view's ttl in microseconds (None: no limit)."""
    return None if view.ttl is None else round(view.ttl.total_seconds() * 1_000_000)


class OnlineReader:
    """Cached catalog, key types and read plans of one project, and the read itself."""

    def __init__(self, registry: Registry, describe: DescribeSource, udfs: Udfs, *,
                 recheck_seconds: float = 1.0) -> None:
        self.registry = registry
        self.describe = describe
        self.udfs = udfs
        self.recheck_seconds = recheck_seconds
        self._catalog: tuple[int, Catalog] | None = None
        self._checked_at = float("-inf")
        self._plans: dict[tuple[Any, ...], ReadPlan] = {}
        self._kinds: dict[str, tuple[type | None, ...]] = {}

    def refresh(self) -> None:
        """Re-check the registry version on the next call (after `apply`, say)."""
        self._checked_at = float("-inf")

    def catalog(self) -> tuple[int, Catalog]:
        """The applied catalog, re-checked against the registry at most every recheck_seconds."""
        cached = self._catalog
        clock = time.monotonic()
        if cached is not None and clock - self._checked_at < self.recheck_seconds:
            return cached
        version = self.registry.latest_version()
        if cached is None or version != cached[0]:
            current = self.registry.current()
            if current is None:
                raise NotFoundError(f"Project {self.registry.project!r} has no applied "
                                    "definitions.", hint="Run `shipyard apply` first.")
            self._plans, self._kinds = {}, {}
            self._catalog = cached = current
        self._checked_at = clock
        return cached

    def key_kinds(self, view: FeatureView) -> tuple[type | None, ...]:
        """The Python type of each join key of a view, from its source's column types."""
        kinds = self._kinds.get(view.name)
        if kinds is None:
            _, catalog = self.catalog()
            source = file_source_of(view.source)
            by_feature = {feature: column for column, feature in source.field_mapping.items()}
            try:
                types = self.describe(source)
            except ShipyardError:  # source not reachable from here: check nothing
                types = {}
            kinds = tuple(key_kind(types.get(by_feature.get(k, k)))
                          for k in catalog.join_keys(view))
            self._kinds[view.name] = kinds
        return kinds

    def plan(self, features: Sequence[str] | None, feature_service: str | None,
             full_feature_names: bool) -> ReadPlan:
        """The cached read plan of a request (built on first use per catalog version)."""
        version, catalog = self.catalog()
        try:
            cache_key = (None if features is None else tuple(features), feature_service,
                         full_feature_names)
            plan = self._plans.get(cache_key)
        except TypeError:  # unhashable feature references: let resolve() explain
            cache_key, plan = None, None
        if plan is None or plan.version != version:
            plan = self._build(version, catalog, catalog.resolve(features, feature_service),
                               full_feature_names)
            if cache_key is not None:
                if len(self._plans) >= _MAX_PLANS:
                    self._plans.clear()
                self._plans[cache_key] = plan
        return plan

    def _build(self, version: int, catalog: Catalog, request: Request,
               full_feature_names: bool) -> ReadPlan:
        names = request.column_names(full_feature_names)
        steps = []
        for view in request.views:
            if not view.online:
                raise InvalidInputError(f"Feature view {view.name!r} is not served online "
                                        "(online=False).",
                                        hint="Set online=True and run `shipyard apply`, or read "
                                             "it with get_historical_features.")
            feats = tuple(request.view_features[view.name])
            steps.append(_ViewStep(view.name, catalog.join_keys(view), self.key_kinds(view),
                                   feats, tuple(f"{view.name}__{f}" for f in feats),
                                   ttl_us(view)))
        odfvs = request.on_demand_views
        udfs = self.udfs(odfvs)
        on_demand = []
        for odfv in odfvs:
            sources: dict[str, str | None] = {}
            dtypes: dict[str, Any] = {}
            for proj in odfv.view_inputs:
                view = catalog.feature_views[proj.view]
                for f in view.schema:
                    if f.name in (proj.features or view.feature_names):
                        sources[f.name] = f"{view.name}__{f.name}"
                        dtypes[f.name] = pandas_dtype(f.dtype.arrow)
            for src in odfv.request_sources:
                for f in src.schema:
                    sources[f.name] = None
                    dtypes[f.name] = pandas_dtype(f.dtype.arrow)
            inputs = tuple((c, sources[c]) for c in input_columns(odfv, catalog))
            on_demand.append(_OnDemandStep(odfv, udfs[odfv.name], inputs, dtypes))
        return ReadPlan(version, request.join_keys,
                        tuple(f.name for f in request.request_fields), tuple(steps),
                        tuple(on_demand),
                        tuple((name, f"{v}__{f}") for name, (v, f)
                              in zip(names, request.outputs, strict=True)))

    def read(self, store: OnlineStore, plan: ReadPlan, entity_rows: Sequence[Mapping[str, Any]],
             *, at_us: int | None = None) -> dict[str, list[Any]]:
        """Feature values of each entity row, as column name to list, in row order."""
        rows = _checked_rows(entity_rows)
        n = len(rows)
        at = now_us() if at_us is None else at_us
        keys = {k: _column(rows, k, "join key") for k in plan.join_keys}
        computed: dict[str, list[Any]] = {}
        for step in plan.views:
            stored = store.read(step.name, _encoded_keys(step, keys)) if n else []
            cutoff = None if step.ttl_us is None else at - step.ttl_us
            columns: list[list[Any]] = [[None] * n for _ in step.features]
            for i, row in enumerate(stored):
                if row is None or (cutoff is not None and row.event_us < cutoff):
                    continue
                values = row.values
                for column, name in zip(columns, step.features, strict=True):
                    column[i] = values.get(name)
            computed.update(zip(step.columns, columns, strict=True))
        for od in plan.on_demand:
            inputs = {name: computed[source] if source is not None
                      else _column(rows, name, f"request data of {od.view.name!r}")
                      for name, source in od.inputs}
            result = run_on_columns(od.view, od.udf, inputs, n, dtypes=od.dtypes)
            computed.update((f"{od.view.name}__{name}", result[name])
                            for name in od.view.feature_names)
        out: dict[str, list[Any]] = dict(keys)
        for name, source in plan.outputs:
            out[name] = computed[source]
        return out


def _checked_rows(entity_rows: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(entity_rows, Mapping | str | bytes) or not isinstance(entity_rows, Sequence):
        raise InvalidInputError(f"entity_rows must be a list of dicts, got "
                                f"{type(entity_rows).__name__}.",
                                hint="e.g. entity_rows=[{'customer_id': 1}].")
    for i, row in enumerate(entity_rows):
        if not isinstance(row, Mapping):
            raise InvalidInputError(f"Entity row {i} is a {type(row).__name__}, not a dict.",
                                    hint="e.g. entity_rows=[{'customer_id': 1}].")
    return entity_rows


def _column(rows: Sequence[Mapping[str, Any]], name: str, what: str) -> list[Any]:
    try:
        return [row[name] for row in rows]
    except KeyError:
        i = next(i for i, row in enumerate(rows) if name not in row)
        raise InvalidInputError(f"Entity row {i} has no {what} {name!r}.",
                                hint=f"Its keys are {sorted(rows[i])}; add {name!r}.") from None


def _encoded_keys(step: _ViewStep, keys: dict[str, list[Any]]) -> list[bytes]:
    columns = [keys[k] for k in step.keys]
    try:
        if len(columns) == 1:
            kind = step.kinds[0]
            return [encode_key((checked_key(v, kind),)) for v in columns[0]]
        return [encode_key(tuple(checked_key(v, kind) for v, kind in
                                 zip(values, step.kinds, strict=True)))
                for values in zip(*columns, strict=True)]
    except TypeError as exc:
        value = exc.args[0]
        for name, kind, column in zip(step.keys, step.kinds, columns, strict=True):
            if value in column and kind is not None:
                raise InvalidInputError(
                    f"Join key {name!r} is {value!r} ({type(value).__name__}) in entity row "
                    f"{column.index(value)}; feature view {step.name!r} keys are "
                    f"{kind.__name__}.", hint=f"Pass {name!r} as {kind.__name__}.") from None
        raise InvalidInputError(f"Entity key {value!r} of view {step.name!r} cannot be used.",
                                hint="Pass join keys as int or str.") from None
