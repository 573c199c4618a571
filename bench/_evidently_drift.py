"""Evidently worker for bench/monitoring.py: runs in bench/.venv-evidently, prints one JSON line.

Usage: bench/.venv-evidently/bin/python bench/_evidently_drift.py <data folder>
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq


def _cpu_s() -> float:
    """User plus system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(folder: Path) -> None:
    """Load both windows, run DataDriftPreset, print timings and the drifted columns."""
    start = time.perf_counter()
    reference, current = (pq.read_table(folder / f"{name}.parquet").to_pandas()
                          for name in ("reference", "current"))
    loaded = time.perf_counter()
    rss_loaded = rss_mb()
    peak_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from evidently import Report
    from evidently.presets import DataDriftPreset

    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    drifted, methods = [], set()
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        method, value, threshold = config["method"], metric["value"], config["threshold"]
        methods.add(method)
        # p-value methods drift below the threshold, distances at or above it.
        is_drift = value < threshold if "p_value" in method else value >= threshold
        if is_drift:
            drifted.append(config["column"])
    print(json.dumps({"load_s": round(loaded - start, 3), "report_s": round(wall, 3),
                      "report_cpu_s": round(cpu, 2),
                      "rss_after_load_mb": round(rss_loaded, 1),
                      "peak_rss_after_load_mb": round(peak_loaded, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "drifted": sorted(drifted), "methods": sorted(methods)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
