"""Feast side of the point-in-time join benchmark (one timed run).

Runs inside the Feast virtualenv ``bench/.venv-feast`` (see ``pit_join.py``),
never in Shipyard's venv. It builds a throwaway Feast repo in a temporary
folder, registers the two feature views over the benchmark's Parquet files,
applies it, then times::

    store.get_historical_features(entity_df=..., features=[...]).to_df()

and prints one JSON line to stdout::

    {"engine": "feast-duckdb", "seconds": ..., "rows_in": ..., "rows_out": ...,
     "peak_rss_mb": ..., "version": ..., "duckdb_version": ..., "summary": {...}}

Reading ``entities.parquet`` into pandas happens before the clock starts.

Usage::

    bench/.venv-feast/bin/python bench/_feast_pit.py --data bench/.data/pit [--offline duckdb|file]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

FEATURE_REFS = [
    "customer_stats:f1",
    "customer_stats:f2",
    "customer_stats:f3",
    "merchant_stats:m1",
    "merchant_stats:m2",
]
TTL = timedelta(days=2)

FEATURE_STORE_YAML = """\
project: pit_bench
provider: local
registry: {root}/registry.db
online_store:
  type: sqlite
  path: {root}/online.db
offline_store:
  type: {offline}
entity_key_serialization_version: 3
"""


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarize(df: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """Order-independent fingerprint of the joined features.

    Per feature: how many rows got a value and the sum of the values, so the
    harness can check that engines joined the same data.
    """
    summary: dict[str, dict[str, float | int]] = {}
    for ref in FEATURE_REFS:
        col = df[ref.split(":")[1]]
        summary[ref] = {"non_null": int(col.notna().sum()), "sum": float(col.sum(skipna=True))}
    return summary


def build_store(root: Path, data_dir: Path, offline: str) -> Any:
    """Create a Feast repo in ``root``, apply the benchmark's definitions.

    Returns the ``feast.FeatureStore``.
    """
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    (root / "feature_store.yaml").write_text(FEATURE_STORE_YAML.format(root=root, offline=offline))

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.INT64)

    def source(name: str) -> FileSource:
        return FileSource(
            name=f"{name}_source",
            path=str(data_dir / f"{name}.parquet"),
            timestamp_field="event_timestamp",
            created_timestamp_column="created_at",
        )

    customer_stats = FeatureView(
        name="customer_stats",
        entities=[customer],
        ttl=TTL,
        schema=[
            Field(name="customer_id", dtype=Int64),
            Field(name="f1", dtype=Float64),
            Field(name="f2", dtype=Float64),
            Field(name="f3", dtype=Int64),
        ],
        source=source("customer_stats"),
        online=False,
    )
    merchant_stats = FeatureView(
        name="merchant_stats",
        entities=[merchant],
        ttl=TTL,
        schema=[
            Field(name="merchant_id", dtype=Int64),
            Field(name="m1", dtype=Float64),
            Field(name="m2", dtype=Int64),
        ],
        source=source("merchant_stats"),
        online=False,
    )

    store = FeatureStore(repo_path=str(root))
    store.apply([customer, merchant, customer_stats, merchant_stats])
    return store


def run(data_dir: Path, offline: str) -> dict[str, Any]:
    """Apply the repo and time one historical retrieval."""
    import duckdb
    import feast

    entity_df = pd.read_parquet(data_dir / "entities.parquet")
    rows_in = len(entity_df)

    with tempfile.TemporaryDirectory(prefix="feast-pit-") as tmp:
        store = build_store(Path(tmp), data_dir, offline)
        t0 = time.perf_counter()
        out = store.get_historical_features(entity_df=entity_df, features=FEATURE_REFS).to_df()
        seconds = time.perf_counter() - t0

    return {
        "engine": f"feast-{offline}",
        "seconds": seconds,
        "rows_in": rows_in,
        "rows_out": len(out),
        "peak_rss_mb": peak_rss_mb(),
        "version": feast.__version__,
        "duckdb_version": duckdb.__version__,
        "summary": summarize(out),
    }


def main() -> None:
    """Parse flags, run once, print the JSON line."""
    p = argparse.ArgumentParser(description="Time one Feast point-in-time join.")
    p.add_argument("--data", type=Path, required=True, help="folder with the benchmark's Parquet files")
    p.add_argument("--offline", choices=["duckdb", "file"], default="duckdb", help="Feast offline store type")
    args = p.parse_args()

    # Feast is chatty (deprecation notes, registry messages); keep stderr for errors.
    warnings.filterwarnings("ignore")
    logging.getLogger("feast").setLevel(logging.ERROR)

    result = run(args.data.resolve(), args.offline)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
