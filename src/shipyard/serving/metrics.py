"""Prometheus metrics of one server: request counts and latencies by route, and more.

Each app has its own registry, so apps built in one process (tests) do not collide. With
several worker processes, `multiprocess_dir` (prometheus-client's PROMETHEUS_MULTIPROC_DIR,
set before the workers start) makes `/metrics` report the sum over the workers.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

# Sub-millisecond buckets: the feature server's own overhead lives there.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED = "<unmatched>"  # the route label of requests no route took (404s)


class Metrics:
    """The registry and the metric objects routes share; add your own with `registry=`."""

    def __init__(self, *, namespace: str = "shipyard", multiprocess_dir: str | None = None
                 ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir
        self.requests = Counter("http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], namespace=namespace,
                                registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds",
                                 "Time from the request to the end of the response, by route.",
                                 ["route", "method"], namespace=namespace,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.online_entities = Counter("online_feature_entities",
                                       "Entity rows read by /v1/features/online.",
                                       namespace=namespace, registry=self.registry)
        self.pushed_rows = Counter("pushed_rows", "Rows written by /v1/push, by push source.",
                                   ["push_source"], namespace=namespace, registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            if len(self._children) > 10_000:  # bounded: labels come from route templates
                self._children.clear()
            children = (self.requests.labels(route, method, str(status)),
                        self.latency.labels(route, method))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format (summed over workers if multiprocess)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)
