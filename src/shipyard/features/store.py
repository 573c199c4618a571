"""`project.features`: the feature store's API over the applied definitions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from shipyard.core.errors import NotFoundError
from shipyard.features.catalog import Catalog
from shipyard.features.definitions import Definition, OnDemandFeatureView
from shipyard.features.offline import OfflineStore
from shipyard.features.registry import Registry
from shipyard.features.retrieval import EntityFrame, historical_features
from shipyard.features.transforms import bind_udf


class FeatureStore:
    """Feature retrieval over the registry's applied definitions."""

    def __init__(self, registry: Registry, offline: OfflineStore,
                 definitions: Callable[[], Sequence[Definition]]) -> None:
        self.registry = registry
        self.offline = offline
        self._definitions = definitions

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
