"""Drift report benchmark: Shipyard vs Evidently's DataDriftPreset, side by side in one run.

Scenario: 50 columns (40 numeric, 10 categorical), a reference window and a current window
of N rows *each* (N = 100,000 and 1,000,000 by default), generated deterministically into
``bench/.data/monitoring/<N>/`` (Parquet, reused while the generator is unchanged). Exactly
7 columns shift between the windows (``SHIFTED``): a mean shift, a scale change, a skew
change, a Poisson rate change, a missing-share jump (2% -> 30%, same values otherwise), a
re-weighting of category frequencies and a new category. The other 43 keep their
distribution (some with nulls at a constant rate, one with 5,000 Zipf-distributed categories).

Each tool runs in a fresh subprocess that loads the two Parquet files and computes the
report; we record the wall time of the report alone, the load time, and the peak RSS of the
process (``resource.getrusage``, which includes the loaded frames: ~0.7 GB at 1M rows).
Ours runs ``--repeat`` times (median report time kept; the machine may be shared).

* ``shipyard``  -- this interpreter, ``shipyard.monitoring.drift`` with default settings;
* ``evidently`` -- ``bench/.venv-evidently`` (created with python3.11 and pip on first use),
  ``Report([DataDriftPreset()])``; at 1M rows only with ``--evidently-1m`` (~800 s).

Usage::

    .venv/bin/python bench/monitoring.py [--rows 100000 1000000] [--repeat 3] [--evidently-1m]
                                         [--no-evidently]

A single JSON document goes to stdout; progress messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data" / "monitoring"
EVIDENTLY_VENV = BENCH_DIR / ".venv-evidently"
EVIDENTLY_PIP_SPECS = ["evidently", "pandas<3", "pyarrow"]
EVIDENTLY_SCRIPT = BENCH_DIR / "_evidently_drift.py"
GENERATOR_VERSION = 2
SEED = 20240607
N_NUMERIC, N_CATEGORICAL = 40, 10
SHIFTED = ["num_00", "num_05", "num_10", "num_15", "num_20", "cat_02", "cat_07"]


def log(message: str) -> None:
    """Print a progress message to stderr."""
    print(f"[monitoring] {message}", file=sys.stderr, flush=True)


def _numeric(rng: np.random.Generator, i: int, n: int, shifted: bool) -> np.ndarray:
    """Numeric column i; its family cycles through five distributions."""
    family = i % 5
    missing_jump = shifted and i == 20
    shifted = shifted and not missing_jump  # num_20 keeps its law; only its missing share jumps
    if family == 0:
        values = rng.normal(100.0 + (2.5 if shifted else 0.0), 10.0, n)  # +0.25 sd
    elif family == 1:
        values = rng.normal(0.0, 1.5 if shifted else 1.0, n)  # scale x1.5
    elif family == 2:
        values = rng.lognormal(3.0, 0.7 if shifted else 0.5, n)  # heavier tail
    elif family == 3:
        values = rng.poisson(3.6 if shifted else 3.0, n).astype(np.float64)
    else:
        values = rng.exponential(20.0, n)
    null_share = 0.02 if i % 4 == 0 else 0.0
    if missing_jump:
        null_share = 0.30
    if null_share:
        values[rng.random(n) < null_share] = np.nan
    return values


def _categorical(rng: np.random.Generator, j: int, n: int, shifted: bool) -> pd.Categorical:
    """Categorical column j: small vocabularies, plus one with 5,000 Zipf-ranked values."""
    if j == 9:
        codes = np.minimum(rng.zipf(1.3, n), 5_000) - 1
        return pd.Categorical.from_codes(codes, [f"v{k}" for k in range(5_000)])
    size = (3, 5, 8, 12, 20)[j % 5]
    weights = 1.0 / np.arange(1, size + 1)
    if j == 2 and shifted:
        weights = weights[::-1]  # the rarest become the most frequent
    labels = [f"c{k}" for k in range(size)] + ["new"]
    probs = np.append(weights / weights.sum(), 0.0)
    if j == 7 and shifted:
        probs = np.append(probs[:-1] * 0.85, 0.15)  # a new category takes 15%
    return pd.Categorical.from_codes(rng.choice(size + 1, n, p=probs), labels)


def make_frame(n: int, shifted: bool, seed: int) -> pd.DataFrame:
    """One window of the scenario."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        columns[f"num_{i:02d}"] = _numeric(rng, i, n, shifted and f"num_{i:02d}" in SHIFTED)
    for j in range(N_CATEGORICAL):
        columns[f"cat_{j:02d}"] = _categorical(rng, j, n, shifted and f"cat_{j:02d}" in SHIFTED)
    return pd.DataFrame(columns)


def ensure_data(n: int) -> Path:
    """Write reference.parquet and current.parquet for n rows unless they are current."""
    folder = DATA_DIR / str(n)
    meta = folder / "scenario.json"
    wanted = {"rows": n, "seed": SEED, "generator_version": GENERATOR_VERSION, "shifted": SHIFTED}
    if meta.exists() and json.loads(meta.read_text()) == wanted:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    log(f"generating {n:,} + {n:,} rows into {folder} ...")
    for name, shifted, seed in (("reference", False, SEED), ("current", True, SEED + 1)):
        table = pa.Table.from_pandas(make_frame(n, shifted, seed), preserve_index=False)
        pq.write_table(table, folder / f"{name}.parquet")
    meta.write_text(json.dumps(wanted))
    return folder


def read_window(path: Path) -> pd.DataFrame:
    """Read one window column by column: peak memory stays near the frame's own size."""
    parquet = pq.ParquetFile(path)
    pool = pa.default_memory_pool()
    columns = {}
    for name in parquet.schema_arrow.names:
        table = parquet.read(columns=[name], use_threads=False)
        columns[name] = table.to_pandas(self_destruct=True)[name]
        del table
        pool.release_unused()  # hand Arrow's freed buffers back before the next column
    return pd.DataFrame(columns, copy=False)


def load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both windows of one size."""
    return read_window(folder / "reference.parquet"), read_window(folder / "current.parquet")


def _cpu_s() -> float:
    """User plus system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_shipyard(folder: Path) -> dict[str, Any]:
    """Worker: load, run our drift report, return timings and the drifted columns."""
    start = time.perf_counter()
    reference, current = load(folder)
    loaded = time.perf_counter()
    rss_loaded = rss_mb()
    peak_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from shipyard.monitoring import drift

    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    report = drift(reference, current)
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    methods = sorted({col.method for col in report.columns.values()})
    missing = [name for name, col in report.columns.items() if col.missing_drift_detected]
    return {"missing_drift": missing, "load_s": round(loaded - start, 3), "report_s": round(wall, 3),
            "report_cpu_s": round(cpu, 2),
            "rss_after_load_mb": round(rss_loaded, 1), "peak_rss_after_load_mb": round(peak_loaded, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "drifted": report.drifted_columns, "methods": methods}


def ensure_evidently() -> Path:
    """Create bench/.venv-evidently with Evidently in it, once."""
    python = EVIDENTLY_VENV / "bin" / "python"
    check = [str(python), "-c", "import evidently, pandas, pyarrow"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    log(f"creating {EVIDENTLY_VENV} (python3.11 -m venv; pip install {' '.join(EVIDENTLY_PIP_SPECS)}) ...")
    subprocess.run(["python3.11", "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_PIP_SPECS], check=True,
                   stdout=sys.stderr)
    return python


def _subprocess_json(command: list[str]) -> dict[str, Any]:
    """Run a worker; its last stdout line is its JSON result."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"],
                "elapsed_s": round(time.perf_counter() - start, 1)}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - start, 2)
    return result


def _repeated(command: list[str], repeat: int) -> dict[str, Any]:
    """Run a worker several times: the median report time, the largest peak RSS."""
    results = [_subprocess_json(command) for _ in range(max(repeat, 1))]
    if any("error" in result for result in results):
        return next(result for result in results if "error" in result)
    times = sorted(result["report_s"] for result in results)
    summary = dict(results[0])
    summary.update(report_s=times[len(times) // 2], report_s_runs=[r["report_s"] for r in results],
                   peak_rss_mb=max(r["peak_rss_mb"] for r in results))
    return summary


def _versions(python: str) -> str:
    code = "import numpy, pandas, scipy; print(numpy.__version__, pandas.__version__, scipy.__version__)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def score(drifted: list[str]) -> dict[str, Any]:
    """How a drifted-column set compares with the columns that really shifted."""
    found = set(drifted)
    return {"n_drifted": len(found), "shifted_found": sorted(found & set(SHIFTED)),
            "shifted_missed": sorted(set(SHIFTED) - found), "false_alarms": sorted(found - set(SHIFTED))}


def agreement(a: list[str], b: list[str]) -> dict[str, Any]:
    """Overlap of two drifted-column sets."""
    left, right = set(a), set(b)
    union = left | right
    return {"both": sorted(left & right), "only_shipyard": sorted(left - right),
            "only_evidently": sorted(right - left),
            "jaccard": round(len(left & right) / len(union), 3) if union else 1.0,
            "same_verdict_columns": N_NUMERIC + N_CATEGORICAL - len(left ^ right)}


def main() -> None:
    """Parse arguments, run both tools per size, print one JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--evidently-1m", action="store_true", help="also run Evidently at >= 1M rows")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours per size (median kept)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_shipyard(args.worker)))
        return

    evidently_python = None if args.no_evidently else ensure_evidently()
    runs = []
    for n in args.rows:
        folder = ensure_data(n)
        log(f"{n:,} rows: shipyard x{args.repeat} ...")
        ours = _repeated([sys.executable, __file__, "--worker", str(folder)], args.repeat)
        run: dict[str, Any] = {"rows_per_window": n, "load_average_1m": round(os.getloadavg()[0], 2),
                               "shipyard": ours}
        if "drifted" in ours:
            ours["score"] = score(ours["drifted"])
        if evidently_python and (n < 1_000_000 or args.evidently_1m):
            log(f"{n:,} rows: evidently (slow) ...")
            theirs = _subprocess_json([str(evidently_python), str(EVIDENTLY_SCRIPT), str(folder)])
            run["evidently"] = theirs
            if "drifted" in theirs and "drifted" in ours:
                theirs["score"] = score(theirs["drifted"])
                run["agreement"] = agreement(ours["drifted"], theirs["drifted"])
                run["speedup"] = round(theirs["report_s"] / ours["report_s"], 1)
        elif evidently_python:
            run["evidently"] = {"skipped": "pass --evidently-1m (about 800 s)"}
        runs.append(run)

    versions = {"shipyard_venv": _versions(sys.executable)}
    if evidently_python:
        versions["evidently_venv"] = _versions(str(evidently_python))
        versions["evidently"] = subprocess.run(
            [str(evidently_python), "-c", "import evidently; print(evidently.__version__)"],
            capture_output=True, text=True).stdout.strip()
    print(json.dumps({"benchmark": "monitoring_drift", "columns": {"numeric": N_NUMERIC,
                      "categorical": N_CATEGORICAL}, "shifted": SHIFTED,
                      "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                      "versions": versions, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
