"""Shipyard side of the point-in-time join benchmark (one timed run).

Runs in Shipyard's own venv (``.venv``). It writes a throwaway Shipyard
project (``shipyard.yaml`` + ``defs.py``) in a temporary folder, with the two
feature views over the benchmark's Parquet files, applies it, then times::

    project.features.get_historical_features(entity_df, features=[...])

and prints one JSON line to stdout::

    {"engine": "shipyard", "seconds": ..., "rows_in": ..., "rows_out": ...,
     "peak_rss_mb": ..., "version": ..., "duckdb_version": ..., "summary": {...}}

Reading ``entities.parquet`` into pandas happens before the clock starts.

Usage::

    .venv/bin/python bench/_shipyard_pit.py --data bench/.data/pit
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
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

DEFS_TEMPLATE = '''\
"""Benchmark definitions: two feature views over the generated Parquet files."""

from datetime import timedelta

import shipyard as sy

customer = sy.Entity("customer", join_keys=["customer_id"])
merchant = sy.Entity("merchant", join_keys=["merchant_id"])

customer_stats = sy.FeatureView(
    name="customer_stats",
    entities=[customer],
    ttl=timedelta(days=2),
    schema=[sy.Field("f1", sy.Float64), sy.Field("f2", sy.Float64), sy.Field("f3", sy.Int64)],
    source=sy.FileSource(
        {customer_path!r},
        timestamp_field="event_timestamp",
        created_timestamp_field="created_at",
    ),
)

merchant_stats = sy.FeatureView(
    name="merchant_stats",
    entities=[merchant],
    ttl=timedelta(days=2),
    schema=[sy.Field("m1", sy.Float64), sy.Field("m2", sy.Int64)],
    source=sy.FileSource(
        {merchant_path!r},
        timestamp_field="event_timestamp",
        created_timestamp_field="created_at",
    ),
)
'''


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _feature_column(df: pd.DataFrame, ref: str) -> str:
    """The output column of feature ``ref``, short (``f1``) or full (``customer_stats__f1``)."""
    view, feature = ref.split(":")
    for candidate in (feature, f"{view}__{feature}"):
        if candidate in df.columns:
            return candidate
    raise KeyError(f"feature {ref!r} not in output columns {list(df.columns)}")


def summarize(df: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """Order-independent fingerprint of the joined features.

    Per feature: how many rows got a value and the sum of the values, so the
    harness can check that engines joined the same data.
    """
    summary: dict[str, dict[str, float | int]] = {}
    for ref in FEATURE_REFS:
        col = df[_feature_column(df, ref)]
        summary[ref] = {"non_null": int(col.notna().sum()), "sum": float(col.sum(skipna=True))}
    return summary


def write_project(root: Path, data_dir: Path) -> None:
    """Write ``shipyard.yaml`` and ``defs.py`` for the benchmark into ``root``."""
    (root / "shipyard.yaml").write_text("project: bench\n")
    (root / "defs.py").write_text(
        DEFS_TEMPLATE.format(
            customer_path=str(data_dir / "customer_stats.parquet"),
            merchant_path=str(data_dir / "merchant_stats.parquet"),
        )
    )


def run(data_dir: Path) -> dict[str, Any]:
    """Apply the project and time one historical retrieval."""
    import duckdb

    import shipyard as sy

    entity_df = pd.read_parquet(data_dir / "entities.parquet")
    rows_in = len(entity_df)

    with tempfile.TemporaryDirectory(prefix="shipyard-pit-") as tmp:
        root = Path(tmp)
        write_project(root, data_dir)
        with sy.Project.load(root) as project:
            project.apply()
            t0 = time.perf_counter()
            out = project.features.get_historical_features(entity_df, features=FEATURE_REFS)
            seconds = time.perf_counter() - t0

    return {
        "engine": "shipyard",
        "seconds": seconds,
        "rows_in": rows_in,
        "rows_out": len(out),
        "peak_rss_mb": peak_rss_mb(),
        "version": getattr(sy, "__version__", None),
        "duckdb_version": duckdb.__version__,
        "summary": summarize(out),
    }


def main() -> None:
    """Parse flags, run once, print the JSON line."""
    p = argparse.ArgumentParser(description="Time one Shipyard point-in-time join.")
    p.add_argument("--data", type=Path, required=True, help="folder with the benchmark's Parquet files")
    args = p.parse_args()
    result = run(args.data.resolve())
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
