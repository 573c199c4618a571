"""What the prediction log stores: one entry per model call, columnar, one value per row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Columns every prediction row has; feature columns with one of these names are prefixed.
META_COLUMNS = ("timestamp", "request_id", "model", "version", "variant", "prediction",
                "probabilities", "experiment", "latency_ms")
FEATURE_PREFIX = "feature."


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """The predictions of one model call: per-row ids, times, inputs and outputs."""

    model: str
    version: int
    request_ids: list[str]
    timestamps_us: list[int]  # when each row's request arrived, microseconds since the epoch
    features: dict[str, list[Any]]  # the values the model was given (and the entity keys)
    predictions: list[Any]
    probabilities: list[list[float]] | None = None
    variants: list[str | None] | None = None
    experiments: list[str | None] | None = None  # the A/B test each row was part of
    latency_ms: float | None = None  # the batch's feature lookup and model call time

    def __len__(self) -> int:
        return len(self.predictions)

    def to_record(self) -> dict[str, Any]:
        """A msgpack-ready mapping (the segment file format)."""
        return {"m": self.model, "v": self.version, "ids": self.request_ids,
                "ts": self.timestamps_us, "f": self.features, "p": self.predictions,
                "pr": self.probabilities, "x": self.variants, "e": self.experiments,
                "lat": self.latency_ms}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PredictionBatch:
        """Rebuild from `to_record` output."""
        return cls(record["m"], record["v"], record["ids"], record["ts"], record["f"],
                   record["p"], record.get("pr"), record.get("x"), record.get("e"),
                   record.get("lat"))

    def to_columns(self) -> dict[str, list[Any]]:
        """The rows as columns: the META_COLUMNS (timestamp in µs), then the features."""
        n = len(self)
        columns: dict[str, list[Any]] = {
            "timestamp": self.timestamps_us, "request_id": self.request_ids,
            "model": [self.model] * n, "version": [self.version] * n,
            "variant": self.variants if self.variants is not None else [None] * n,
            "prediction": self.predictions,
            "probabilities": self.probabilities if self.probabilities is not None else [None] * n,
            "experiment": self.experiments if self.experiments is not None else [None] * n,
            "latency_ms": [self.latency_ms] * n,
        }
        for name, values in self.features.items():
            columns[feature_column(name)] = values
        return columns


def feature_column(name: str) -> str:
    """The log's column for a feature (prefixed when it would clash with a meta column)."""
    return FEATURE_PREFIX + name if name in META_COLUMNS else name
