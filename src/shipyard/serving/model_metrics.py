"""Prometheus metrics of the model server: requests per model and version, latencies, batches,
queue depth and the prediction log's lag and drops (in the server's registry)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shipyard.predictions import WriterStats
from shipyard.serving.metrics import LATENCY_BUCKETS

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ModelMetrics:
    """The model server's metric objects; label children are cached (the hot path).

    The `model` label is the deployment's name: the model's own unless it was renamed.
    """

    def __init__(self, registry: CollectorRegistry, *, namespace: str = "shipyard") -> None:
        common: dict[str, Any] = {"namespace": namespace, "registry": registry}
        self.requests = Counter("prediction_requests", "Prediction requests by model, version, "
                                "endpoint and status.", ["model", "version", "endpoint", "status"],
                                **common)
        self.rows = Counter("predictions", "Rows predicted, by model and version.",
                            ["model", "version"], **common)
        self.latency = Histogram("prediction_duration_seconds", "Time from the request to its "
                                 "answer, by model and endpoint.", ["model", "endpoint"],
                                 buckets=LATENCY_BUCKETS, **common)
        self.feature_fetch = Histogram("prediction_feature_fetch_seconds", "Online feature read "
                                       "(and on-demand features) per batch.", ["model"],
                                       buckets=LATENCY_BUCKETS, **common)
        self.model_call = Histogram("prediction_model_call_seconds", "Model call per batch.",
                                    ["model"], buckets=LATENCY_BUCKETS, **common)
        self.batch_size = Histogram("prediction_batch_size", "Requests per model call.",
                                    ["model"], buckets=BATCH_BUCKETS, **common)
        self.queue_depth = Gauge("prediction_queue_depth", "Requests waiting for a batch.",
                                 ["model"], multiprocess_mode="livesum", **common)
        self.loaded_version = Gauge("model_loaded_version", "The version each deployment serves.",
                                    ["model"], multiprocess_mode="liveall", **common)
        self.swaps = Counter("model_swaps", "Version switches after an alias moved.", ["model"],
                             **common)
        self.log_lag = Gauge("prediction_log_lag_seconds", "Age of the oldest prediction not yet "
                             "written to the log.", multiprocess_mode="livemax", **common)
        self.log_queued = Gauge("prediction_log_queued", "Predictions waiting to be written.",
                                multiprocess_mode="livesum", **common)
        self.log_written = Counter("prediction_log_written", "Predictions written to the log.",
                                   **common)
        self.log_dropped = Counter("prediction_log_dropped", "Predictions dropped because the "
                                   "log's queue was full.", **common)
        self.log_failed = Counter("prediction_log_failed", "Predictions lost to write errors.",
                                  **common)
        self._requests: dict[tuple[str, int, str, int], Any] = {}
        self._latency: dict[tuple[str, str], Any] = {}
        self._rows: dict[tuple[str, int], Any] = {}
        self._seen = WriterStats(0, 0, 0, 0, 0.0, 0.0)

    def observe_request(self, model: str, version: int, endpoint: str, status: int,
                        seconds: float) -> None:
        """Count one answered prediction request and its latency."""
        key = (model, version, endpoint, status)
        counter = self._requests.get(key)
        if counter is None:
            if len(self._requests) > 10_000:  # bounded: models and versions are few
                self._requests.clear()
            counter = self._requests[key] = self.requests.labels(model, str(version), endpoint,
                                                                 str(status))
        counter.inc()
        histogram = self._latency.get((model, endpoint))
        if histogram is None:
            histogram = self._latency[(model, endpoint)] = self.latency.labels(model, endpoint)
        histogram.observe(seconds)

    def count_rows(self, model: str, version: int, rows: int) -> None:
        """Count rows predicted by a model version."""
        key = (model, version)
        counter = self._rows.get(key)
        if counter is None:
            if len(self._rows) > 10_000:
                self._rows.clear()
            counter = self._rows[key] = self.rows.labels(model, str(version))
        counter.inc(rows)

    def observe_log(self, stats: WriterStats) -> None:
        """Move the log metrics to the writer's current counters."""
        seen = self._seen
        self.log_written.inc(stats.written_rows - seen.written_rows)
        self.log_dropped.inc(stats.dropped_rows - seen.dropped_rows)
        self.log_failed.inc(stats.failed_rows - seen.failed_rows)
        self.log_lag.set(stats.lag_seconds)
        self.log_queued.set(stats.queued_rows)
        self._seen = stats
