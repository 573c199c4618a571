"""Feast side of the online benchmark (bench/online.py): one round of SDK measurements.

Runs inside the Feast virtualenv ``bench/.venv-feast``, never in Shipyard's venv. It writes
a Feast repo (SQLite online store) into ``--root`` with the benchmark's feature view
``customer_stats`` over the generated Parquet file and a push source ``live_push`` feeding
``customer_live``, applies it, then measures, in order:

* ``materialize``: ``store.materialize(start, end, ["customer_stats"])`` of the 1M-row file;
* ``online_write``: ``store.write_to_online_store("customer_stats", df)`` of rows with new,
  unique keys;
* ``push``: ``store.push("live_push", df)`` (PushMode.ONLINE) of real rows (repeated keys);
* ``read_1`` / ``read_100``: ``store.get_online_features(...).to_dict()`` for 1 and 100
  random entities, latency percentiles.

and prints one JSON document to stdout. ``--setup-only`` applies and materializes the repo
and exits (for ``feast serve``).

Usage::

    bench/.venv-feast/bin/python bench/_feast_online.py --root DIR --data FILE [--setup-only]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = ["customer_stats:f1", "customer_stats:f2", "customer_stats:f3"]
START, END = datetime(2023, 12, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
FEATURE_STORE_YAML = """\
project: online_bench
provider: local
registry: {root}/registry.db
online_store:
  type: sqlite
  path: {root}/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def build_store(root: Path, data: Path) -> Any:
    """Write and apply the Feast repo in ``root``; return the FeatureStore."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, ValueType
    from feast.types import Float64, Int64

    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(FEATURE_STORE_YAML.format(root=root))
    live = root / "live.parquet"
    pd.read_parquet(data).head(10).to_parquet(live)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    schema = [Field(name="customer_id", dtype=Int64), Field(name="f1", dtype=Float64),
              Field(name="f2", dtype=Float64), Field(name="f3", dtype=Int64)]

    def source(name: str, path: Path) -> FileSource:
        return FileSource(name=name, path=str(path), timestamp_field="event_timestamp",
                          created_timestamp_column="created_at")

    stats = FeatureView(name="customer_stats", entities=[customer], ttl=None, schema=schema,
                        source=source("customer_stats_source", data), online=True)
    push_source = PushSource(name="live_push", batch_source=source("live_source", live))
    live_view = FeatureView(name="customer_live", entities=[customer], ttl=None,
                            schema=schema, source=push_source, online=True)
    store = FeatureStore(repo_path=str(root))
    store.apply([customer, stats, push_source, live_view])
    return store


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p99 of latencies in seconds, as milliseconds."""
    ms = np.asarray(samples) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "n": len(samples)}


def time_reads(store: Any, ids: np.ndarray, batch: int, requests: int) -> dict[str, float]:
    """Latency of get_online_features for `batch` random entities per request."""
    rng = np.random.default_rng(7)
    for _ in range(50):  # warm-up: registry cache, connections
        store.get_online_features(features=FEATURES, entity_rows=[
            {"customer_id": int(i)} for i in rng.choice(ids, batch)]).to_dict()
    requests_rows = [[{"customer_id": int(i)} for i in rng.choice(ids, batch)]
                     for _ in range(requests)]  # built before the clock starts
    samples = []
    cpu = time.process_time()
    for rows in requests_rows:
        t0 = time.perf_counter()
        store.get_online_features(features=FEATURES, entity_rows=rows).to_dict()
        samples.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu
    return {**percentiles(samples), "cpu_us_per_read": cpu * 1e6 / requests}


def checksum(store: Any, ids: list[int]) -> float:
    """Sum of f1 over `ids` (the harness compares it across engines)."""
    out = store.get_online_features(features=FEATURES,
                                    entity_rows=[{"customer_id": i} for i in ids]).to_dict()
    return float(sum(v for v in out["f1"] if v is not None))


def run(root: Path, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Apply, then materialize, write, push and read; return the figures."""
    import feast

    store = build_store(root, data)
    table = pd.read_parquet(data)
    t0 = time.perf_counter()
    store.materialize(START, END, feature_views=["customer_stats"])
    materialize_s = time.perf_counter() - t0
    result: dict[str, Any] = {"engine": "feast", "version": feast.__version__,
                              "materialize": {"seconds": materialize_s,
                                              "source_rows": len(table)}}
    if args.setup_only:
        return result
    write = table.head(args.write_rows).copy()
    write["customer_id"] = np.arange(2_000_000, 2_000_000 + len(write), dtype=np.int64)
    t0 = time.perf_counter()
    store.write_to_online_store("customer_stats", write)
    result["online_write"] = {"rows": len(write), "seconds": time.perf_counter() - t0}
    push = table.iloc[args.write_rows:args.write_rows + args.push_rows]
    t0 = time.perf_counter()
    store.push("live_push", push)
    result["push"] = {"rows": len(push), "seconds": time.perf_counter() - t0}
    ids = np.asarray(sorted(table["customer_id"].unique()))
    result["read_1"] = time_reads(store, ids, 1, args.reads_1)
    result["read_100"] = time_reads(store, ids, 100, args.reads_100)
    result["checksum_f1"] = checksum(store, [int(i) for i in ids[:100]])
    return result


def main() -> None:
    """Parse flags, run one round, print the JSON document."""
    p = argparse.ArgumentParser(description="One round of Feast online measurements.")
    p.add_argument("--root", type=Path, required=True, help="folder for the Feast repo")
    p.add_argument("--data", type=Path, required=True, help="customer_stats.parquet")
    p.add_argument("--write-rows", type=int, default=50_000)
    p.add_argument("--push-rows", type=int, default=50_000)
    p.add_argument("--reads-1", type=int, default=2_000)
    p.add_argument("--reads-100", type=int, default=200)
    p.add_argument("--setup-only", action="store_true", help="apply and materialize only")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("feast").setLevel(logging.ERROR)
    logging.disable(logging.WARNING)
    with contextlib.redirect_stdout(sys.stderr):  # Feast prints progress to stdout
        result = run(args.root.resolve(), args.data.resolve(), args)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
