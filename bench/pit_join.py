"""Point-in-time join benchmark: Shipyard vs Feast, side by side in one run.

Scenario (defaults): 1,000,000 entity rows joined to two feature views of
1,000,000 rows each (``customer_stats`` and ``merchant_stats``), over 10,000
entities per view, ttl = 2 days. The data is generated deterministically with
a seeded numpy generator into ``bench/.data/pit/`` and reused on later runs
while its parameters match.

Every run of every engine is a fresh subprocess, so that its peak RSS is its
own; runs are interleaved (one run of each engine per round):

* ``shipyard``     -- ``bench/_shipyard_pit.py`` in this interpreter's venv;
* ``feast-duckdb`` -- ``bench/_feast_pit.py`` in ``bench/.venv-feast`` (created
  and populated with pip on first use), Feast's DuckDB offline store;
* ``feast-file``   -- same, Feast's ``file`` (Dask) offline store; slow and
  memory hungry, only with ``--feast-file``.

Usage::

    .venv/bin/python bench/pit_join.py [--repeat 3] [--feast-file] [--no-feast]

A single JSON document goes to stdout; progress messages go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = BENCH_DIR / ".data" / "pit"
FEAST_VENV = BENCH_DIR / ".venv-feast"
# Feast's DuckDB offline store lives behind the `duckdb` extra, which pulls in
# ibis-framework[duckdb]; feast 0.67 itself requires pandas<3. ibis and duckdb
# are pinned to the versions the published figures were measured with.
FEAST_PIP_SPECS = ["feast[duckdb]==0.67.0", "ibis-framework==12.0.0", "duckdb==2.0.1"]
FEAST_IMPORT_CHECK = "import feast, ibis, duckdb"

# Bump when the generator changes so that stale data is regenerated.
GENERATOR_VERSION = 1
SCENARIO_FILE = "scenario.json"
MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
TS_TYPE = pa.timestamp("us", tz="UTC")

FEATURE_REFS = [
    "customer_stats:f1",
    "customer_stats:f2",
    "customer_stats:f3",
    "merchant_stats:m1",
    "merchant_stats:m2",
]


def log(message: str) -> None:
    """Print a progress message to stderr."""
    print(f"[pit_join] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Parameters that fully determine the generated data."""

    feature_rows: int = 1_000_000
    """Rows in each feature view."""
    entity_rows: int = 1_000_000
    """Rows in the entity (label) table."""
    ids: int = 10_000
    """Distinct join-key values per feature view."""
    days: int = 30
    """Feature rows are spread over this many days."""
    lead_hours: int = 24
    """Entity timestamps start this long before the first feature row, so
    some entity rows have no feature value yet."""
    correction_fraction: float = 0.01
    """Share of feature rows that repeat another row's (id, event_timestamp)
    and are told apart by created_at only, which exercises the tie-break."""
    ttl_days: int = 2
    """The views' ttl (informational: the runners define it as 2 days)."""
    seed: int = 20240101
    start: str = "2024-01-01T00:00:00"
    """First feature timestamp, UTC."""
    generator_version: int = GENERATOR_VERSION

    def start_us(self) -> int:
        """Start of the feature window as microseconds since the epoch."""
        return int(np.datetime64(self.start, "us").astype(np.int64))


def _feature_table(
    rng: np.random.Generator,
    scenario: Scenario,
    key: str,
    id_base: int,
    features: dict[str, str],
) -> pa.Table:
    """One feature view: key, event_timestamp, created_at and features.

    ``features`` maps column name to ``"float64"`` or ``"int64"``. Rows are
    written in event-time order, like an append-only feature log.
    """
    n = scenario.feature_rows
    ids = id_base + rng.integers(0, scenario.ids, size=n, dtype=np.int64)
    event_ts = scenario.start_us() + rng.integers(
        0, scenario.days * MICROS_PER_DAY, size=n, dtype=np.int64
    )
    # A few "corrections": rows that copy the (id, event_timestamp) of another
    # row; created_at alone decides which of them the join must return.
    n_corr = int(n * scenario.correction_fraction)
    dst = rng.choice(n, size=n_corr, replace=False)
    src = rng.integers(0, n, size=n_corr)
    ids[dst] = ids[src]
    event_ts[dst] = event_ts[src]
    # created_at = event_timestamp + 1..10 minutes (microsecond resolution,
    # so ties between a row and its correction are practically impossible).
    created = event_ts + rng.integers(
        60 * MICROS_PER_SECOND, 600 * MICROS_PER_SECOND, size=n, dtype=np.int64
    )

    columns: dict[str, pa.Array] = {key: pa.array(ids)}
    for name, kind in features.items():
        if kind == "float64":
            columns[name] = pa.array(rng.normal(100.0, 25.0, size=n))
        else:
            columns[name] = pa.array(rng.integers(0, 1_000, size=n, dtype=np.int64))

    order = np.argsort(event_ts, kind="stable")
    table = pa.table(
        {
            key: columns.pop(key),
            "event_timestamp": pa.array(event_ts, type=pa.int64()).cast(TS_TYPE),
            "created_at": pa.array(created, type=pa.int64()).cast(TS_TYPE),
            **columns,
        }
    )
    return table.take(pa.array(order))


def _entity_table(rng: np.random.Generator, scenario: Scenario) -> pa.Table:
    """Entity rows: customer_id, merchant_id, event_timestamp and a label."""
    n = scenario.entity_rows
    lead_us = scenario.lead_hours * 3_600 * MICROS_PER_SECOND
    lo = scenario.start_us() - lead_us
    hi = scenario.start_us() + scenario.days * MICROS_PER_DAY
    return pa.table(
        {
            "customer_id": pa.array(
                1_000_000 + rng.integers(0, scenario.ids, size=n, dtype=np.int64)
            ),
            "merchant_id": pa.array(
                5_000_000 + rng.integers(0, scenario.ids, size=n, dtype=np.int64)
            ),
            "event_timestamp": pa.array(
                rng.integers(lo, hi, size=n, dtype=np.int64), type=pa.int64()
            ).cast(TS_TYPE),
            "label": pa.array(rng.integers(0, 2, size=n, dtype=np.int64)),
        }
    )


DATA_FILES = ("customer_stats.parquet", "merchant_stats.parquet", "entities.parquet")


def ensure_data(data_dir: Path, scenario: Scenario) -> None:
    """Generate the Parquet files into ``data_dir`` unless they already match.

    ``scenario.json`` records the parameters the files were generated with;
    it is written last, so an interrupted generation is redone next time.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    meta_path = data_dir / SCENARIO_FILE
    wanted = dataclasses.asdict(scenario)
    if meta_path.exists() and all((data_dir / f).exists() for f in DATA_FILES):
        if json.loads(meta_path.read_text()) == wanted:
            log(f"reusing data in {data_dir}")
            return
    meta_path.unlink(missing_ok=True)

    log(f"generating data into {data_dir} ...")
    t0 = time.perf_counter()
    rng = np.random.default_rng(scenario.seed)
    tables = {
        "customer_stats.parquet": _feature_table(
            rng,
            scenario,
            "customer_id",
            1_000_000,
            {"f1": "float64", "f2": "float64", "f3": "int64"},
        ),
        "merchant_stats.parquet": _feature_table(
            rng, scenario, "merchant_id", 5_000_000, {"m1": "float64", "m2": "int64"}
        ),
        "entities.parquet": _entity_table(rng, scenario),
    }
    for name, table in tables.items():
        tmp = data_dir / f".{name}.tmp"
        pq.write_table(table, tmp)
        tmp.replace(data_dir / name)
    meta_path.write_text(json.dumps(wanted, indent=2) + "\n")
    log(f"generated data in {time.perf_counter() - t0:.1f}s")


# --------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------


@dataclass
class Engine:
    """An engine under test: how to start one run of it in a subprocess."""

    name: str
    command: list[str]


def ensure_feast_venv(venv: Path = FEAST_VENV) -> Path:
    """Create ``venv`` with Feast installed unless it already works.

    Returns the path of the venv's python interpreter.
    """
    python = venv / "bin" / "python"
    if python.exists():
        check = subprocess.run([str(python), "-c", FEAST_IMPORT_CHECK], capture_output=True)
        if check.returncode == 0:
            return python
    if not python.exists():
        log(f"creating Feast virtualenv {venv} ...")
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    log(f"pip install {' '.join(FEAST_PIP_SPECS)} into {venv} (takes about a minute) ...")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *FEAST_PIP_SPECS],
        check=True,
        stdout=sys.stderr,
    )
    subprocess.run([str(python), "-c", FEAST_IMPORT_CHECK], check=True)
    return python


def run_once(engine: Engine) -> dict[str, Any]:
    """Run ``engine`` once in a fresh process and return its JSON result."""
    proc = subprocess.run(engine.command, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise RuntimeError(
            f"{engine.name} failed (exit {proc.returncode}):\n{tail or proc.stdout[-2000:]}"
        )
    return json.loads(lines[-1])


def run_engines(engines: list[Engine], repeat: int) -> dict[str, dict[str, Any]]:
    """Run every engine ``repeat`` times, interleaved, and aggregate per engine.

    Runs go in rounds (each engine once per round), so that a slow phase of
    the machine, e.g. another job on the same cores, weighs on every engine
    rather than on one. Each run records the 1-minute load average at its
    start. An engine that fails is reported as ``{"error": ...}`` and not
    run again.
    """
    runs: dict[str, list[dict[str, Any]]] = {e.name: [] for e in engines}
    errors: dict[str, str] = {}
    for i in range(repeat):
        for engine in engines:
            if engine.name in errors:
                continue
            log(f"{engine.name}: run {i + 1}/{repeat} ...")
            load = os.getloadavg()[0]
            try:
                run = run_once(engine)
            except RuntimeError as exc:
                log(str(exc))
                errors[engine.name] = str(exc)
                continue
            run["load_avg_1m"] = round(load, 2)
            log(
                f"{engine.name}: {run['seconds']:.2f}s, peak RSS {run['peak_rss_mb']:.0f} MB, "
                f"rows_out {run['rows_out']:,} (load {load:.2f})"
            )
            runs[engine.name].append(run)

    return {
        name: (
            {"error": errors[name], "runs_completed": len(engine_runs)}
            if name in errors
            else aggregate(engine_runs)
        )
        for name, engine_runs in runs.items()
    }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One engine's report from its runs.

    The median join time, every run's time and starting load average, rows
    per second (entity rows / median seconds), the worst peak RSS over the
    runs, the row counts and the feature summary.
    """
    median = statistics.median(r["seconds"] for r in runs)
    last = runs[-1]
    return {
        "engine": last["engine"],
        "version": last.get("version"),
        "duckdb_version": last.get("duckdb_version"),
        "median_seconds": round(median, 4),
        "run_seconds": [round(r["seconds"], 4) for r in runs],
        "run_load_avg_1m": [r["load_avg_1m"] for r in runs],
        "rows_per_second": round(last["rows_in"] / median) if median > 0 else None,
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "rows_in": last["rows_in"],
        "rows_out": last["rows_out"],
        "rows_out_matches_rows_in": all(r["rows_out"] == r["rows_in"] for r in runs),
        "feature_summary": last.get("summary"),
    }


def compare_summaries(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Check that all engines that finished joined the same feature values.

    Compares, per feature, the non-null count exactly and the sum within a
    relative 1e-9 (summation order differs between engines).
    """
    done = {n: r["feature_summary"] for n, r in results.items() if r.get("feature_summary")}
    if len(done) < 2:
        return {"engines_compared": sorted(done), "agree": None}
    (ref_name, ref), *others = done.items()
    mismatches: list[str] = []
    for name, summary in others:
        for feature, stats in ref.items():
            got = summary.get(feature)
            if got is None or got["non_null"] != stats["non_null"]:
                mismatches.append(f"{name} vs {ref_name}: {feature} non_null differs")
            elif abs(got["sum"] - stats["sum"]) > 1e-9 * max(1.0, abs(stats["sum"])):
                mismatches.append(f"{name} vs {ref_name}: {feature} sum differs")
    return {"engines_compared": sorted(done), "agree": not mismatches, "mismatches": mismatches}


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per engine; the median is reported (default 3)")
    p.add_argument("--feast-file", action="store_true",
                   help="also run Feast's slow file (Dask) offline store")
    p.add_argument("--no-feast", action="store_true", help="run Shipyard only")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"data folder (default {DEFAULT_DATA_DIR})")
    p.add_argument("--rows", type=int, default=Scenario.feature_rows,
                   help="rows per feature view, and entity rows (default 1,000,000)")
    p.add_argument("--ids", type=int, default=Scenario.ids,
                   help="distinct ids per feature view (default 10,000)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Generate data, run every engine, print the JSON report."""
    args = parse_args(argv)
    scenario = Scenario(feature_rows=args.rows, entity_rows=args.rows, ids=args.ids)
    data_dir = args.data.resolve()
    ensure_data(data_dir, scenario)

    engines = [
        Engine("shipyard", [sys.executable, str(BENCH_DIR / "_shipyard_pit.py"), "--data", str(data_dir)])
    ]
    if not args.no_feast:
        feast_python = ensure_feast_venv()
        offlines = ["duckdb", "file"] if args.feast_file else ["duckdb"]
        for offline in offlines:
            runner = [str(feast_python), str(BENCH_DIR / "_feast_pit.py")]
            engines.append(
                Engine(f"feast-{offline}", [*runner, "--data", str(data_dir), "--offline", offline])
            )

    results = run_engines(engines, args.repeat)

    shipyard_s = results["shipyard"].get("median_seconds")
    ratios: dict[str, float | None] = {}
    for name in ("feast-duckdb", "feast-file"):
        if name in results:
            feast_s = results[name].get("median_seconds")
            key = f"{name.replace('-', '_')}_seconds / shipyard_seconds"
            ratios[key] = round(feast_s / shipyard_s, 2) if feast_s and shipyard_s else None

    report = {
        "benchmark": "pit_join",
        "scenario": {
            **dataclasses.asdict(scenario),
            "feature_views": {
                "customer_stats": {"join_key": "customer_id", "features": ["f1", "f2", "f3"]},
                "merchant_stats": {"join_key": "merchant_id", "features": ["m1", "m2"]},
            },
            "features": FEATURE_REFS,
            "data_dir": str(data_dir),
            "repeat": args.repeat,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "engines": results,
        "ratios": ratios,
        "results_agree": compare_summaries(results),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
