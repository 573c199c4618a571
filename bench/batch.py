"""Batch prediction benchmark: the local engine and Spark local mode against the model's own
predict speed, on the fraud demo.

Scenario: the fraud demo's data (2,000 customers, 60 days: ~1.4 M `customer_stats` rows,
~11 k `merchant_stats` rows) and its model, a 100-iteration HistGradientBoostingClassifier
on the 13 numeric columns of `fraud_v2` (customer and merchant statistics, and four
on-demand features computed by the service's Python transform). Entity rows are labelled
transactions, sampled with replacement and with their times jittered, in Parquet files of
100 k-row row groups; each row is scored point-in-time at its own timestamp.

Measured, each in fresh processes (so that memory figures are each engine's own):

* ``raw``   -- the model's `predict_proba` on the already prepared feature matrix (200 k
  rows), one process per core, all at once, BLAS/OpenMP pinned to one thread each; rows/s is
  the sum over the processes. This is the ceiling: "the model's own predict speed".
* ``local`` -- `project.batch.predict(..., engine="local")`: Parquet in, point-in-time
  join, on-demand transforms, predict, Parquet out. Run `--repeat` times in one process:
  the first run is cold (imports, pool start), the others warm.
* ``spark`` -- the same job with `engine="spark"` on `local[*]`, cold then warm.
* ``local_1_worker`` -- the local engine with one worker process, to show what the pool
  buys (``workers_speedup``).
* ``agreement`` -- the local and Spark outputs of the same input compared row by row
  (by a unique ``txn`` id): every row once, the same keys, times and labels, and the
  largest probability difference.
* ``stored`` -- the local engine and raw predict with a model on the stored features only
  (no on-demand transform), to show the engine's own overhead apart from the project's
  transform code.

Peak memory is sampled every 100 ms over the whole process tree (driver, pool workers, the
Spark JVM and its Python workers), as summed RSS and as summed PSS (shared pages, such as
the memory-mapped view indexes, split among the processes that share them). CPU seconds
are counted too: on a shared machine they are steadier than wall time.

Usage::

    .venv/bin/python bench/batch.py --quick             # 200 k rows, ~3 minutes
    .venv/bin/python bench/batch.py                     # 1 M rows, both models, Spark
    .venv/bin/python bench/batch.py --ten-million --no-spark --no-stored --no-one-worker
    .venv/bin/python bench/batch.py [--rows N ...] [--repeat 3] [--spark-10m]

One JSON document goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data" / "batch"
DATA_VERSION = 2
RAW_ROWS = 200_000
STORED_SERVICE = '''
import shipyard as sy
from features import customer_stats, merchant_stats

fraud_stored = sy.FeatureService(
    "fraud_stored",
    features=[customer_stats, merchant_stats[["merchant_txn_count_24h", "fraud_rate_30d",
                                              "merchant_amount_mean_30d"]]],
    description="Benchmark only: stored features, no on-demand transform.",
)
'''
EXCLUDED = {"customer_id", "merchant_id", "event_timestamp", "is_fraud", "label_timestamp",
            "category", "txn"}


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[batch] {message}", file=sys.stderr, flush=True)


# -- the project, the models and the inputs (made once, reused while DATA_VERSION holds) ----


def prepare(data: Path) -> Path:
    """The fraud project with both models registered; returns its folder."""
    root = data / "project"
    stamp = data / "version.json"
    if stamp.exists() and json.loads(stamp.read_text()) == {"version": DATA_VERSION}:
        return root
    from sklearn.ensemble import HistGradientBoostingClassifier

    import shipyard as sy
    from shipyard.examples.fraud import features as fraud_features
    from shipyard.examples.fraud.generate import generate

    shutil.rmtree(data, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copy(fraud_features.__file__, root / "features.py")
    (root / "bench_services.py").write_text(STORED_SERVICE)
    (root / "shipyard.yaml").write_text("project: fraud_bench\n")
    log("generating the fraud demo data (2,000 customers, 60 days)")
    generate(root / "data", customers=2_000, days=60)
    with sy.Project.load(root) as project:
        project.apply()
        labels = pd.read_parquet(root / "data" / "labels.parquet")
        for name, service in (("fraud", "fraud_v2"), ("fraud_stored", "fraud_stored")):
            log(f"training {name} on {service}")
            train = project.features.get_historical_features(labels, feature_service=service)
            skip = EXCLUDED | ({"amount"} if service == "fraud_stored" else set())
            columns = [c for c in train.columns if c not in skip]
            model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False,
                                                   random_state=0)
            model.fit(train[columns], train["is_fraud"])
            version = project.models.register(name, model, feature_service=service)
            project.models.set_alias(name, "champion", version.version)
            prepared = train.sample(min(RAW_ROWS, len(train)), replace=False, random_state=1)
            matrix = pd.concat([prepared] * -(-RAW_ROWS // len(prepared)))[columns]
            matrix.head(RAW_ROWS).reset_index(drop=True).to_parquet(data / f"{name}_matrix.parquet")
    stamp.write_text(json.dumps({"version": DATA_VERSION}))
    return root


def entities(data: Path, rows: int) -> Path:
    """`rows` transactions to score (Parquet, 100 k-row row groups), made once per size."""
    path = data / f"entities_{rows}.parquet"
    if path.exists():
        return path
    log(f"writing {rows:,} entity rows")
    import pyarrow as pa
    import pyarrow.parquet as pq

    labels = pd.read_parquet(data / "project" / "data" / "labels.parquet",
                             columns=["customer_id", "merchant_id", "amount", "event_timestamp"])
    rng = np.random.default_rng(rows)
    schema = pa.Schema.from_pandas(labels.head(1), preserve_index=False).append(
        pa.field("txn", pa.int64()))
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            chunk = labels.iloc[rng.integers(0, len(labels), n)].reset_index(drop=True)
            jitter = pd.to_timedelta(rng.integers(-3_600, 3_600, n), unit="s")
            chunk["event_timestamp"] = chunk["event_timestamp"] + jitter
            chunk["txn"] = np.arange(start, start + n, dtype=np.int64)  # to compare engines
            writer.write_table(pa.Table.from_pandas(chunk, preserve_index=False, schema=schema),
                               row_group_size=100_000)
    tmp.rename(path)  # a run killed while writing leaves no half file behind
    return path


# -- measuring a child process tree --------------------------------------------------------


def tree_memory(pid: int) -> tuple[int, int]:
    """The resident memory of `pid` and all its descendants, in bytes (Linux /proc): summed
    RSS (pages shared between processes, such as the memory-mapped view indexes every worker
    reads, count once per process) and summed PSS (shared pages split among their sharers:
    what the tree really occupies)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    rss = pss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            with open(f"/proc/{current}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith(("Rss:", "Pss:")):
                        value = int(line.split()[1]) * 1024
                        if line.startswith("Rss:"):
                            rss += value
                        else:
                            pss += value
        except (OSError, ValueError):
            continue
    return rss, pss


def run_child(args: list[str], timeout: float = 7_200) -> dict[str, Any]:
    """Run `bench/batch.py <args>` in a fresh process; its JSON, plus the tree's peak memory."""
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, pss = tree_memory(process.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, _ = process.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"bench child {args} failed with exit code {process.returncode}")
    report = json.loads(stdout.strip().splitlines()[-1])
    report["peak_rss_mb"], report["peak_pss_mb"] = round(peak[0] / 2**20), round(peak[1] / 2**20)
    return report


# -- the children ----------------------------------------------------------------------------


def child_engine(root: Path, source: Path, engine: str, model: str, repeat: int,
                 out: Path, workers: int) -> None:
    """Score `source` `repeat` times in this process (local: `workers` processes, 0 = one
    per core); print one JSON line."""
    import shipyard as sy

    runs = []
    with sy.Project.load(root) as project:
        if workers:
            project.batch.configure_engine("local", workers=workers)
        for _ in range(repeat):
            result = project.batch.predict(f"{model}@champion", source, output=out,
                                           engine=engine, overwrite=True, keep_columns=["txn"])
            cpu = None if result.cpu_seconds is None else round(result.cpu_seconds, 2)
            runs.append({"seconds": round(result.seconds, 3), "rows": result.rows,
                         "cpu_seconds": cpu, "partitions": result.partitions})
    print(json.dumps({"runs": runs}))


def child_raw(root: Path, matrix: Path, model: str, start_at: float) -> None:
    """The model's predict_proba on the prepared matrix, one thread; print one JSON line."""
    from threadpoolctl import threadpool_limits

    import shipyard as sy

    with sy.Project.load(root) as project:
        loaded = project.models.load(f"{model}@champion")
    frame = pd.read_parquet(matrix)
    seconds, cpu = [], []
    with threadpool_limits(1):
        loaded.predict_proba(frame.head(1_000))
        time.sleep(max(0.0, start_at - time.time()))  # every core's process starts together
        for _ in range(3):
            wall, used = time.perf_counter(), time.process_time()
            loaded.predict_proba(frame)
            seconds.append(time.perf_counter() - wall)
            cpu.append(time.process_time() - used)
    print(json.dumps({"rows": len(frame), "seconds": seconds, "cpu_seconds": cpu}))


# -- the harness -------------------------------------------------------------------------------


def raw_predict(root: Path, data: Path, model: str, cores: int) -> dict[str, Any]:
    """One raw-predict process per core, started together; summed rows/s (median run)."""
    start_at = time.time() + 20  # after every process has loaded the model and the matrix
    matrix = data / f"{model}_matrix.parquet"
    reports: list[dict[str, Any]] = [{} for _ in range(cores)]

    def one(i: int) -> None:
        reports[i] = run_child(["--child-raw", str(root), str(matrix), model, str(start_at)])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(cores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    per_process = [r["rows"] / statistics.median(r["seconds"]) for r in reports]
    cpu_us = statistics.median(c / r["rows"] * 1e6 for r in reports for c in r["cpu_seconds"])
    return {"processes": cores, "rows_per_process_per_s": [round(v) for v in per_process],
            "rows_per_s_all_cores": round(sum(per_process)), "cpu_us_per_row": round(cpu_us, 2)}


def engine_runs(root: Path, source: Path, engine: str, model: str, repeat: int,
                out: Path, workers: int = 0) -> dict[str, Any]:
    """`repeat` runs of one engine in one fresh process: cold, then warm."""
    report = run_child(["--child-engine", str(root), str(source), engine, model, str(repeat),
                        str(out), str(workers)])
    runs = report["runs"]
    rows = runs[0]["rows"]
    warm = runs[1:] or runs
    median = statistics.median(r["seconds"] for r in warm)
    return {"runs_seconds": [r["seconds"] for r in runs], "cold_seconds": runs[0]["seconds"],
            "warm_median_seconds": median, "rows": rows,
            "rows_per_s_cold": round(rows / runs[0]["seconds"]),
            "rows_per_s_warm": round(rows / median),
            "cpu_us_per_row_warm": None if warm[0]["cpu_seconds"] is None else round(
                statistics.median(r["cpu_seconds"] for r in warm) / rows * 1e6, 2),
            "partitions": runs[0]["partitions"], "peak_rss_mb": report["peak_rss_mb"],
            "peak_pss_mb": report["peak_pss_mb"]}


def agreement(source: Path, outputs: dict[str, Path]) -> dict[str, Any]:
    """How two engines' outputs of one input compare: every input row once in each, the same
    predictions, the largest probability difference."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(source).metadata.num_rows
    columns = ["txn", "customer_id", "merchant_id", "event_timestamp", "prediction", "proba_1"]
    tables = {name: pq.read_table(path, columns=columns).sort_by("txn")
              for name, path in outputs.items()}
    (a_name, a), (b_name, b) = tables.items()
    once = {name: t.num_rows == rows and pc.count_distinct(t["txn"]).as_py() == rows
            for name, t in tables.items()}
    same = {c: a[c].equals(b[c]) for c in columns if c != "proba_1"}
    diff = np.abs(a["proba_1"].to_numpy(zero_copy_only=False)
                  - b["proba_1"].to_numpy(zero_copy_only=False))
    return {"engines": [a_name, b_name], "rows": rows, "every_row_once": once,
            "identical_columns": same, "max_abs_proba_diff": float(diff.max()),
            "agree_within_1e-9": all(once.values()) and all(same.values())
            and float(diff.max()) <= 1e-9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--ten-million", action="store_true",
                        help="also 10,000,000 rows (local engine; Spark too with --spark-10m)")
    parser.add_argument("--spark-10m", action="store_true")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--no-stored", action="store_true",
                        help="skip the stored-features-only model")
    parser.add_argument("--models", nargs="+", choices=["fraud", "fraud_stored"],
                        help="the models to run (default: both, or fraud with --no-stored)")
    parser.add_argument("--no-one-worker", action="store_true",
                        help="skip the local engine with one worker process")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine (first is cold)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 200,000 rows, 2 runs per engine, fraud model only")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat, args.no_stored, args.ten_million = [200_000], 2, True, False

    from shipyard.batch.local import cores

    data = args.data.resolve()
    root = prepare(data)
    n_cores = cores()
    sizes = list(args.rows) + ([10_000_000] if args.ten_million else [])
    results: dict[str, Any] = {"scenario": {
        "model": "HistGradientBoostingClassifier(max_iter=100) on fraud_v2 (13 numeric "
                 "inputs, 4 of them on-demand)",
        "stored_model": "the same on fraud_stored (8 stored features, no on-demand)",
        "cores": n_cores, "python": platform.python_version(), "quick": args.quick,
        "command": " ".join(["bench/batch.py", *sys.argv[1:]]),
        "load_average_at_start": os.getloadavg()}, "sizes": {}}
    models = args.models or ["fraud"] + ([] if args.no_stored else ["fraud_stored"])
    raw = {}
    for model in models:
        log(f"raw predict of {model}, {n_cores} processes")
        raw[model] = raw_predict(root, data, model, n_cores)
    results["raw_predict"] = raw
    for rows in sizes:
        source = entities(data, rows)
        size: dict[str, Any] = {}
        for model in models:
            log(f"{rows:,} rows, {model}: local engine, {n_cores} workers")
            local = engine_runs(root, source, "local", model, args.repeat, data / "out_local")
            all_cores = raw[model]["rows_per_s_all_cores"]
            entry: dict[str, Any] = {
                "local": local, "local_vs_raw": round(local["rows_per_s_warm"] / all_cores, 3),
                # CPU per row, raw over engine: the share of the engine's CPU that is predict
                "local_vs_raw_cpu": round(raw[model]["cpu_us_per_row"]
                                          / local["cpu_us_per_row_warm"], 3)}
            if not args.no_one_worker and model == "fraud" and n_cores > 1:
                log(f"{rows:,} rows, {model}: local engine, 1 worker")
                one = engine_runs(root, source, "local", model, args.repeat,
                                  data / "out_local_1", workers=1)
                entry["local_1_worker"] = one
                entry["workers_speedup"] = round(one["warm_median_seconds"]
                                                 / local["warm_median_seconds"], 2)
                entry["one_worker_vs_raw_one_core"] = round(
                    one["rows_per_s_warm"] / (all_cores / n_cores), 3)
            spark_wanted = not args.no_spark and model == "fraud" and (
                rows < 10_000_000 or args.spark_10m)
            if spark_wanted:
                log(f"{rows:,} rows, {model}: Spark local mode")
                spark = engine_runs(root, source, "spark", model, min(args.repeat, 2),
                                    data / "out_spark")
                entry["spark"] = spark
                entry["local_vs_spark_warm"] = round(spark["warm_median_seconds"]
                                                     / local["warm_median_seconds"], 2)
                entry["local_vs_spark_cold"] = round(spark["cold_seconds"]
                                                     / local["cold_seconds"], 2)
                log(f"{rows:,} rows: comparing the local and Spark outputs")
                entry["agreement"] = agreement(source, {"local": data / "out_local",
                                                        "spark": data / "out_spark"})
            size[model] = entry
        results["sizes"][str(rows)] = size
    results["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-engine":
        child_engine(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5],
                     int(sys.argv[6]), Path(sys.argv[7]), int(sys.argv[8]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-raw":
        child_raw(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], float(sys.argv[5]))
    else:
        main()
