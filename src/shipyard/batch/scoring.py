"""Scoring a batch of entity rows: point-in-time features, on-demand transforms, the model.

Both engines run this same code on each batch (the local engine in its worker processes,
Spark in `mapInArrow`); they differ only in how the view features get joined. Feature
retrieval is `historical_features`, the function behind `get_historical_features`, so a batch
score sees exactly the values a training set would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from shipyard.core.errors import InvalidInputError
from shipyard.features.catalog import Request
from shipyard.features.definitions import FileSource
from shipyard.features.offline import ROW, OfflineStore, ViewRead
from shipyard.features.retrieval import historical_features, utc_naive
from shipyard.features.transforms import to_pandas
from shipyard.models import Model

PREDICTION = "prediction"
TIME = "event_timestamp"  # the output's timestamp: when the features were read
_AT = "__features_at"  # the entity frame's time column when every row is scored at one time
_UTC = pa.timestamp("us", tz="UTC")


def class_labels(model: Model) -> list[Any] | None:
    """The classes of a classifier, in predict_proba's column order (None if unknown)."""
    # Model keeps its predictor private; scikit-learn style estimators expose `classes_`
    estimator = getattr(getattr(model, "_predictor", None), "model", None)
    classes = getattr(estimator, "classes_", None)
    return None if classes is None or not model.has_proba else np.asarray(classes).tolist()


def output_schema(input_schema: pa.Schema, keys: Sequence[str], keep: Sequence[str],
                  model: Model, classes: Sequence[Any] | None) -> pa.Schema:
    """The columns of every output file: keys, time, kept columns, prediction(s), lineage."""
    output = model.signature.output
    fields = [input_schema.field(k) for k in keys] + [pa.field(TIME, _UTC)]
    fields += [input_schema.field(k) for k in keep]
    fields.append(pa.field(PREDICTION, output.dtype.arrow if output else pa.float64()))
    fields += [pa.field(f"proba_{c}", pa.float64()) for c in classes or ()]
    fields += [pa.field("model_name", pa.string()), pa.field("model_version", pa.int64()),
               pa.field("run_id", pa.string())]
    return pa.schema(fields)


@dataclass
class Scorer:
    """Everything a worker needs to turn entity rows into output rows (sent to it pickled)."""

    model: Model
    request: Request | None  # None: the model reads the input's own columns
    udfs: dict[str, Callable[[Any], Any]]
    timestamp_column: str | None  # the input's; None when every row is scored at features_at
    features_at: datetime | None
    keys: tuple[str, ...]
    keep: tuple[str, ...]
    run_id: str
    schema: pa.Schema
    classes: list[Any] | None

    @property
    def input_columns(self) -> list[str]:
        """The input columns a batch must carry."""
        names = [*self.keys, *([self.timestamp_column] if self.timestamp_column else [])]
        if self.request is not None:
            names += [f.name for f in self.request.request_fields]
        else:
            names += self.model.signature.names
        return list(dict.fromkeys([*names, *self.keep]))

    def score(self, batch: pa.Table | pa.RecordBatch, join: OfflineStore) -> pa.Table:
        """Output rows for a batch of input rows; `join` supplies the view features."""
        frame = to_pandas(batch)
        at = self.timestamp_column or _AT
        if self.features_at is not None:
            frame[_AT] = pd.Timestamp(self.features_at)
        features = frame if self.request is None else historical_features(
            join, self.request, self.udfs, frame, timestamp_column_name=at)
        columns: dict[str, Any] = {k: batch.column(k) for k in self.keys}
        columns[TIME] = pa.array(utc_naive(frame[at], at)).cast(_UTC)
        columns.update({k: batch.column(k) for k in self.keep})
        columns.update(self._predict(features))
        rows = len(frame)
        columns["model_name"] = pa.array([self.model.name] * rows, pa.string())
        columns["model_version"] = pa.array(np.full(rows, self.model.version.version))
        columns["run_id"] = pa.array([self.run_id] * rows, pa.string())
        return pa.table(columns).cast(self.schema)

    def _predict(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """The prediction, and a probability per class for classifiers (one model pass where
        the label is the most probable class; the model's own predict where it is not)."""
        if self.classes is None:
            return {PREDICTION: np.asarray(self.model.predict(features))}
        labels, both = self.model.predict_both(features)
        proba = np.asarray(both, dtype=np.float64)
        return {PREDICTION: labels, **{f"proba_{c}": proba[:, i]
                                       for i, c in enumerate(self.classes)}}


class JoinedFeatures:
    """An offline store whose join is already done: the batch's own 'view__feature' columns.

    The Spark engine joins in Spark SQL, then hands each batch here, so that on-demand
    transforms, checks and naming run through `historical_features` as everywhere else.
    """

    def __init__(self, features: pa.Table, source_types: dict[str, dict[str, str]]) -> None:
        self._features = features
        self._types = source_types

    def describe_source(self, source: FileSource) -> dict[str, str]:
        """Column name to SQL type of a source, as the offline store described it."""
        return self._types[source.path]

    def point_in_time_join(self, entities: pa.Table, views: Sequence[ViewRead], *,
                           filter_by_created_timestamp: bool = False) -> pa.Table:
        """The batch's joined features, with the entity row numbers."""
        if entities.num_rows != self._features.num_rows:
            raise InvalidInputError("Joined features and entity rows differ in number.",
                                    hint="This is a bug in the Spark engine; please report it.")
        names = [v.column(f.name) for v in views for f in v.features]
        return self._features.select(names).add_column(0, ROW, entities.column(ROW))
