"""`project.features`: the feature store's API over the applied definitions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

import pandas as pd
import pyarrow as pa

from shipyard.core.errors import ConfigError, NotFoundError
from shipyard.features import materialize as _materialize
from shipyard.features import push as _push
from shipyard.features import skew as _skew
from shipyard.features.catalog import Catalog
from shipyard.features.definitions import Definition, OnDemandFeatureView
from shipyard.features.offline import OfflineStore
from shipyard.features.online import OnlineStore
from shipyard.features.online_read import OnlineReader
from shipyard.features.registry import Registry
from shipyard.features.retrieval import EntityFrame, historical_features
from shipyard.features.transforms import bind_udf


class FeatureStore:
    """Feature retrieval over the registry's applied definitions."""

    def __init__(self, registry: Registry, offline: OfflineStore,
                 definitions: Callable[[], Sequence[Definition]], *,
                 online: Callable[[], OnlineStore] | None = None) -> None:
        self.registry = registry
        self.offline = offline
        self._definitions = definitions
        self._online_factory = online

    @cached_property
    def online(self) -> OnlineStore:
        """The online store (built on first use)."""
        if self._online_factory is None:
            raise ConfigError("This feature store has no online store.",
                              hint="Use project.features, which takes it from shipyard.yaml.")
        return self._online_factory()

    @cached_property
    def online_reader(self) -> OnlineReader:
        """Cached catalog and read plans for online reads."""
        return OnlineReader(self.registry, self.offline.describe_source, self._udfs)

    def refresh(self) -> None:
        """Make the next online read or push re-check the applied definitions."""
        if "online_reader" in self.__dict__:
            self.online_reader.refresh()

    @cached_property
    def watermarks(self) -> _materialize.Watermarks:
        """Per-view incremental materialization watermarks."""
        return _materialize.Watermarks(self.registry.db, self.registry.project)

    def catalog(self) -> tuple[int, Catalog]:
        """The applied definitions version and its catalog."""
        current = self.registry.current()
        if current is None:
            raise NotFoundError(f"Project {self.registry.project!r} has no applied definitions.",
                                hint="Run `shipyard apply` (or project.apply()) first.")
        return current

    def _udfs(self, odfvs: Sequence[OnDemandFeatureView]) -> dict[str, Callable[[Any], Any]]:
        if not odfvs:
            return {}
        found = {d.name: d for d in self._definitions() if isinstance(d, OnDemandFeatureView)}
        return {o.name: bind_udf(o, found.get(o.name)) for o in odfvs}

    def get_historical_features(
        self,
        entity_df: EntityFrame | None = None,
        *,
        features: Sequence[str] | None = None,
        feature_service: str | None = None,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
        timestamp_column: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> pd.DataFrame:
        """Point-in-time correct feature values for each entity row (see DESIGN.md).

        Every entity row comes back, in order, with nulls where no feature row is in the
        view's ttl window. Without `entity_df`, every feature row with `start <= ts <= end`
        is returned, joined to its own entity and timestamp.
        """
        _, catalog = self.catalog()
        request = catalog.resolve(features, feature_service)
        return historical_features(
            self.offline, request, self._udfs(request.on_demand_views), entity_df,
            full_feature_names=full_feature_names,
            filter_by_created_timestamp=filter_by_created_timestamp,
            timestamp_column_name=timestamp_column, start=start, end=end,
        )

    def read_historical_features(self, entity_df: EntityFrame | None = None,
                                 **options: Any) -> pa.Table:
        """`get_historical_features` as an Arrow table."""
        frame = self.get_historical_features(entity_df, **options)
        return pa.Table.from_pandas(frame, preserve_index=False)

    def get_online_features(
        self,
        *,
        features: Sequence[str] | None = None,
        feature_service: str | None = None,
        entity_rows: Sequence[Mapping[str, Any]],
        full_feature_names: bool = False,
    ) -> dict[str, list[Any]]:
        """Latest feature values of each entity row, as column name to list, in row order.

        The columns are the join keys, then the features. Values older than their view's
        ttl and unknown keys read as null; on-demand features are computed from request
        data passed in the rows, by the same function as offline.
        """
        reader = self.online_reader
        plan = reader.plan(features, feature_service, full_feature_names)
        return reader.read(self.online, plan, entity_rows)

    def materialize(self, start: datetime | str | None, end: datetime | str, *,
                    views: Sequence[str] | None = None,
                    progress: _materialize.Progress | None = None,
                    ) -> list[_materialize.MaterializedView]:
        """Load, per key, the latest row with start <= ts <= end of each view online."""
        _, catalog = self.catalog()
        return _materialize.materialize(self.offline, self.online, catalog, start, end,
                                        views=views, progress=progress)

    def materialize_incremental(self, end: datetime | str, *,
                                views: Sequence[str] | None = None,
                                progress: _materialize.Progress | None = None,
                                ) -> list[_materialize.MaterializedView]:
        """Materialize each view from its watermark up to `end`, then advance the watermark."""
        _, catalog = self.catalog()
        return _materialize.materialize_incremental(
            self.offline, self.online, catalog, self.watermarks, end, views=views,
            progress=progress)

    def push(self, push_source_name: str, dataframe: Any) -> int:
        """Validate rows, append them to the offline history and write them online."""
        _, catalog = self.online_reader.catalog()
        return _push.push(self.offline, self.online, catalog, self.online_reader.key_kinds,
                          push_source_name, dataframe)

    def check_skew(self, *, sample: int = 100, features: Sequence[str] | None = None,
                   feature_service: str | None = None, seed: int = 0) -> _skew.SkewReport:
        """Compare online values with offline point-in-time values for now, per feature."""
        return _skew.check_skew(self, sample=sample, features=features,
                                feature_service=feature_service, seed=seed)
