"""Online store and feature server benchmark: Shipyard vs Feast, side by side in one run.

Data: the point-in-time benchmark's ``customer_stats`` file (1,000,000 feature rows over
10,000 customers, features f1, f2 float64 and f3 int64; see bench/pit_join.py), generated
into ``bench/.data/pit/`` when missing. Every round measures, for Shipyard on SQLite and on
Redis and for Feast on its SQLite online store (in ``bench/.venv-feast``, created by
pit_join's helper when missing):

* ``materialize``   full materialization of the view (1M source rows -> 10,000 keys);
* ``online_write``  rows/s writing new unique keys (Feast: ``write_to_online_store``;
                    Shipyard: the write stage of materialization, from a DataFrame);
* ``push``          rows/s of a push of real rows (Feast: ``store.push``, online only;
                    Shipyard: ``project.features.push``, online + durable offline append);
* ``sdk_read_1`` / ``sdk_read_100``   ``get_online_features`` latency for 1 and 100
                    random entities (p50/p99);
* ``http_sequential``   one keep-alive client, one random entity per request: latency;
* ``http_throughput``   16 concurrent keep-alive clients (wrk -t2 -c16): requests/s.
  Shipyard: ``shipyard serve-features --workers 2``; Feast: ``feast serve --workers 2
  --no-access-log --max-requests 0`` (gunicorn + uvicorn workers, no worker recycling).
  Both on SQLite, the same request body shape, random entities (a wrk Lua script).

Rounds run Shipyard and Feast back to back; the report has each round, the median of
every figure over the rounds, and per-round ratios (Feast time / Shipyard time, Shipyard
rate / Feast rate), so a noisy machine affects both sides of a ratio alike.

Usage::

    .venv/bin/python bench/online.py [--repeat 3] [--quick] [--no-feast] [--no-redis]

One JSON document goes to stdout (and to ``bench/.data/online/result.json``); progress
goes to stderr. ``wrk`` must be installed (``apt-get install -y wrk``) unless ``--no-http``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from pit_join import DEFAULT_DATA_DIR, Scenario, ensure_data, ensure_feast_venv  # noqa: E402

FEATURES = ["customer_stats:f1", "customer_stats:f2", "customer_stats:f3"]
END = datetime(2024, 2, 1, tzinfo=UTC)
RESULT_FILE = BENCH_DIR / ".data" / "online" / "result.json"
REDIS_URL = os.environ.get("SHIPYARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGETS = {  # figure -> (target, rule)
    "sdk_read_1.shipyard_sqlite.p99_ms": (0.25, "<"),
    "sdk_read_1.shipyard_redis.p99_ms": (1.0, "<"),
    "sdk_read_100.shipyard_sqlite.p50_ms": (2.0, "<"),
    "sdk_read_100.shipyard_redis.p50_ms": (2.0, "<"),
    "http_sequential.shipyard.p99_ms": (2.0, "<"),
    "http_throughput.shipyard.requests_per_s": (4_000, ">="),
    "push.shipyard_sqlite.rows_per_s": (100_000, ">="),
    "push.shipyard_redis.rows_per_s": (100_000, ">="),
    "online_write.shipyard_sqlite.rows_per_s": (34_000, ">="),
    "online_write.shipyard_redis.rows_per_s": (34_000, ">="),
}
DEFINITIONS = '''
import shipyard as sy

customer = sy.Entity("customer", join_keys=["customer_id"])
source = sy.FileSource({data!r}, timestamp_field="event_timestamp",
                       created_timestamp_field="created_at")
schema = [sy.Field("f1", sy.Float64), sy.Field("f2", sy.Float64), sy.Field("f3", sy.Int64)]
customer_stats = sy.FeatureView(name="customer_stats", entities=[customer], ttl=None,
                                schema=schema, source=source)
live_push = sy.PushSource("live_push", batch_source=sy.FileSource(
    "live.parquet", timestamp_field="event_timestamp", created_timestamp_field="created_at"))
customer_live = sy.FeatureView(name="customer_live", entities=[customer], ttl=None,
                               schema=schema, source=live_push)
'''
WRK_SCRIPT = """
local path, head, tail = "{path}", '{head}', '{tail}'
local headers = {{["Content-Type"] = "application/json"}}
request = function()
  return wrk.format("POST", path, headers, head .. (1000000 + math.random(0, 9999)) .. tail)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"non_2xx": %d, "socket_errors": %d}}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[online] {message}", file=sys.stderr, flush=True)


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p99 of latencies in seconds, as milliseconds."""
    ms = np.asarray(samples) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "n": len(samples)}


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------
# Shipyard SDK
# --------------------------------------------------------------------------


def shipyard_project(root: Path, data: Path, store: str) -> Any:
    """A fresh, applied Shipyard project in `root` on the given online store."""
    import shipyard as sy

    root.mkdir(parents=True)
    online = (f"online_store: {{type: redis, url: '{REDIS_URL}', "
              f"key_prefix: bench_{uuid.uuid4().hex[:8]}}}\n" if store == "redis" else "")
    (root / "shipyard.yaml").write_text(f"project: online_bench\n{online}")
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS.format(data=str(data))))
    pd.read_parquet(data).head(10).to_parquet(root / "live.parquet")
    project = sy.Project.load(root)
    project.apply()
    return project


def time_reads(project: Any, ids: np.ndarray, batch: int, requests: int) -> dict[str, float]:
    """Latency of project.features.get_online_features for `batch` random entities, and the
    process CPU time per read (less sensitive to other load on the machine)."""
    rng = np.random.default_rng(7)
    read = project.features.get_online_features
    for _ in range(50):
        read(features=FEATURES, entity_rows=[{"customer_id": int(i)}
                                             for i in rng.choice(ids, batch)])
    requests_rows = [[{"customer_id": int(i)} for i in rng.choice(ids, batch)]
                     for _ in range(requests)]  # built before the clock starts
    samples = []
    cpu = time.process_time()
    for rows in requests_rows:
        t0 = time.perf_counter()
        read(features=FEATURES, entity_rows=rows)
        samples.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu
    return {**percentiles(samples), "cpu_us_per_read": cpu * 1e6 / requests}


def shipyard_round(root: Path, data: Path, table: pd.DataFrame, store: str,
                   args: argparse.Namespace) -> dict[str, Any]:
    """Materialize, write, push and read on one Shipyard store."""
    from shipyard.features.materialize import online_rows, view_read

    project = shipyard_project(root, data, store)
    try:
        t0 = time.perf_counter()
        project.features.materialize(None, END, views=["customer_stats"])
        result: dict[str, Any] = {"materialize": {"seconds": time.perf_counter() - t0,
                                                  "source_rows": len(table)}}
        _, catalog = project.features.catalog()
        read = view_read(catalog, catalog.feature_views["customer_stats"])
        write = table.head(args.write_rows).copy()
        write["customer_id"] = np.arange(2_000_000, 2_000_000 + len(write), dtype=np.int64)
        t0 = time.perf_counter()
        frame = pa.Table.from_pandas(write, preserve_index=False)
        batch = pa.table({"customer_id": frame["customer_id"], "__t": frame["event_timestamp"],
                          "__c": frame["created_at"],
                          **{f"customer_stats__{f}": frame[f] for f in ("f1", "f2", "f3")}}
                         ).combine_chunks().to_batches()[0]
        project.features.online.write("customer_stats", online_rows(read, batch, unique=True))
        result["online_write"] = {"rows": len(write), "seconds": time.perf_counter() - t0}
        push = table.iloc[args.write_rows:args.write_rows + args.push_rows]
        t0 = time.perf_counter()
        project.features.push("live_push", push)
        result["push"] = {"rows": len(push), "seconds": time.perf_counter() - t0}
        ids = np.asarray(sorted(table["customer_id"].unique()))
        result["read_1"] = time_reads(project, ids, 1, args.reads_1)
        result["read_100"] = time_reads(project, ids, 100, args.reads_100)
        out = project.features.get_online_features(
            features=FEATURES, entity_rows=[{"customer_id": int(i)} for i in ids[:100]])
        result["checksum_f1"] = float(sum(v for v in out["f1"] if v is not None))
        if store == "redis":
            for view in ("customer_stats", "customer_live"):
                project.features.online.drop(view)
        return result
    finally:
        project.close()


def redis_is_up() -> bool:
    """Whether the benchmark's Redis answers."""
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


# --------------------------------------------------------------------------
# Feast SDK (its own venv, one subprocess per round)
# --------------------------------------------------------------------------


def feast_round(python: Path, root: Path, data: Path, args: argparse.Namespace
                ) -> dict[str, Any]:
    """One round of bench/_feast_online.py in the Feast venv."""
    command = [str(python), str(BENCH_DIR / "_feast_online.py"), "--root", str(root),
               "--data", str(data), "--write-rows", str(args.write_rows), "--push-rows",
               str(args.push_rows), "--reads-1", str(args.reads_1), "--reads-100",
               str(args.reads_100)]
    proc = subprocess.run(command, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"Feast round failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


# --------------------------------------------------------------------------
# HTTP servers and wrk
# --------------------------------------------------------------------------


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Poll `url` until it answers 200 (or the process dies)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its live descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += (int(stats[current][11]) + int(stats[current][12])) / os.sysconf("SC_CLK_TCK")
        todo += children.get(current, [])
    return total


def wrk(url: str, path: str, script: Path, *, threads: int, connections: int,
        seconds: float) -> dict[str, Any]:
    """Run wrk with the request script; its figures (latency in ms)."""
    proc = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
                           "-s", str(script), url + path], capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    return {"requests": raw["requests"],
            "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
            "p50_ms": raw["p50_us"] / 1e3, "p99_ms": raw["p99_us"] / 1e3,
            "non_2xx": raw["non_2xx"], "socket_errors": raw["socket_errors"]}


def http_round(name: str, command: list[str], port: int, health: str, path: str,
               workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start a server, measure one sequential client and 16 concurrent ones, stop it."""
    body = json.dumps({"features": FEATURES, "entities": {"customer_id": [123456789]}})
    head, tail = body.split("123456789")
    script = workdir / f"{name}.lua"
    script.write_text(WRK_SCRIPT.format(path=path, head=head, tail=tail))
    log_file = workdir / f"{name}-server.log"
    with log_file.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + health, process)
        wrk(url, path, script, threads=1, connections=4, seconds=2)  # warm-up
        sequential = wrk(url, path, script, threads=1, connections=1, seconds=args.http_seconds)
        cpu = tree_cpu_seconds(process.pid)
        loaded = wrk(url, path, script, threads=2, connections=16, seconds=args.http_seconds)
        # the server's own CPU per request: less sensitive to other load than requests/s
        loaded["server_cpu_us_per_request"] = ((tree_cpu_seconds(process.pid) - cpu) * 1e6
                                               / max(loaded["requests"], 1))
    except RuntimeError as exc:
        raise RuntimeError(f"{name}: {exc}\n{log_file.read_text()[-3000:]}") from exc
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return {"sequential": sequential, "throughput": loaded}


def shipyard_http(root: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """`shipyard serve-features --workers 2` on the round's SQLite project."""
    port = free_port()
    command = [sys.executable, "-m", "shipyard.cli.main", "serve-features", "-p", str(root),
               "--port", str(port), "--workers", str(args.workers), "--log-level", "warning"]
    return http_round("shipyard", command, port, "/healthz", "/v1/features/online", workdir,
                      args)


def feast_http(python: Path, root: Path, workdir: Path, args: argparse.Namespace
               ) -> dict[str, Any]:
    """`feast serve --workers 2` on the round's Feast repo (its SQLite store)."""
    port = free_port()
    command = [str(python.parent / "feast"), "-c", str(root), "serve", "-h", "127.0.0.1",
               "-p", str(port), "--workers", str(args.workers), "--no-access-log",
               # no worker recycling (the default restarts a worker every ~1,000 requests,
               # which would cost Feast throughput in a 10 s run)
               "--max-requests", "0", "--max-requests-jitter", "0"]
    return http_round("feast", command, port, "/health", "/get-online-features", workdir,
                      args)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def figures(shipyard: dict[str, dict[str, Any]], feast: dict[str, Any] | None,
            http: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """One round's figures, by metric then engine."""
    engines: dict[str, dict[str, Any]] = {f"shipyard_{k}": v for k, v in shipyard.items()}
    if feast is not None:
        engines["feast_sqlite"] = feast
    out: dict[str, dict[str, dict[str, float]]] = {
        "materialize": {}, "online_write": {}, "push": {}, "sdk_read_1": {},
        "sdk_read_100": {}}
    for name, r in engines.items():
        out["materialize"][name] = {"seconds": r["materialize"]["seconds"],
                                    "source_rows_per_s": r["materialize"]["source_rows"]
                                    / r["materialize"]["seconds"]}
        for key in ("online_write", "push"):
            out[key][name] = {"rows": r[key]["rows"], "seconds": r[key]["seconds"],
                              "rows_per_s": r[key]["rows"] / r[key]["seconds"]}
        fields = ("p50_ms", "p99_ms", "cpu_us_per_read")
        out["sdk_read_1"][name] = {k: r["read_1"][k] for k in fields}
        out["sdk_read_100"][name] = {k: r["read_100"][k] for k in fields}
    out["http_sequential"] = {k: {m: v["sequential"][m] for m in ("p50_ms", "p99_ms")}
                              for k, v in http.items()}
    out["http_throughput"] = {k: {m: v["throughput"][m] for m in
                                  ("requests_per_s", "p50_ms", "p99_ms",
                                   "server_cpu_us_per_request")}
                              for k, v in http.items()}
    return out


def ratios(round_figures: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
    """How many times better than Feast each Shipyard figure is, within one round."""
    out: dict[str, float] = {}

    def better(metric: str, engine: str, feast: str, field: str, lower_is_better: bool) -> None:
        mine = round_figures.get(metric, {}).get(engine, {}).get(field)
        theirs = round_figures.get(metric, {}).get(feast, {}).get(field)
        if mine and theirs:
            out[f"{metric}.{engine}.{field}"] = theirs / mine if lower_is_better else mine / theirs

    for engine in ("shipyard_sqlite", "shipyard_redis"):
        better("materialize", engine, "feast_sqlite", "seconds", True)
        better("online_write", engine, "feast_sqlite", "rows_per_s", False)
        better("push", engine, "feast_sqlite", "rows_per_s", False)
        for metric in ("sdk_read_1", "sdk_read_100"):
            for field in ("p50_ms", "p99_ms", "cpu_us_per_read"):
                better(metric, engine, "feast_sqlite", field, True)
    for field in ("p50_ms", "p99_ms"):
        better("http_sequential", "shipyard", "feast", field, True)
    better("http_throughput", "shipyard", "feast", "requests_per_s", False)
    better("http_throughput", "shipyard", "feast", "server_cpu_us_per_request", True)
    return out


def median_figures(rounds: list[dict[str, dict[str, dict[str, float]]]]
                   ) -> dict[str, dict[str, dict[str, float]]]:
    """The median of every figure over the rounds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for metric, engines in rounds[0].items():
        for engine, fields in engines.items():
            for field in fields:
                values = [r[metric][engine][field] for r in rounds
                          if field in r.get(metric, {}).get(engine, {})]
                out.setdefault(metric, {}).setdefault(engine, {})[field] = (
                    statistics.median(values))
    return out


def target_report(median: dict[str, dict[str, dict[str, float]]],
                  median_ratios: dict[str, float]) -> dict[str, Any]:
    """Each issue target with the median figure, and whether each ratio is >= 5x."""
    out: dict[str, Any] = {}
    for key, (target, rule) in TARGETS.items():
        metric, engine, field = key.split(".")
        value = median.get(metric, {}).get(engine, {}).get(field)
        if value is not None:
            met = value < target if rule == "<" else value >= target
            out[key] = {"target": f"{rule} {target:g}", "median": value, "met": met}
    out["ratios_at_least_5x"] = {k: v >= 5 for k, v in median_ratios.items()}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description="Online store and feature server: Shipyard vs Feast.")
    p.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    p.add_argument("--no-feast", action="store_true", help="Shipyard only")
    p.add_argument("--no-redis", action="store_true", help="skip Shipyard on Redis")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP servers")
    p.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    p.add_argument("--write-rows", type=int, default=50_000)
    p.add_argument("--push-rows", type=int, default=50_000)
    p.add_argument("--reads-1", type=int, default=5_000)
    p.add_argument("--reads-100", type=int, default=500)
    p.add_argument("--http-seconds", type=float, default=10.0)
    args = p.parse_args(argv)
    if args.quick:
        args.write_rows, args.push_rows, args.reads_1, args.reads_100 = 5_000, 5_000, 300, 30
        args.http_seconds = 3.0
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the report."""
    args = parse_args(argv)
    if shutil.which("wrk") is None and not args.no_http:
        log("wrk is not installed: apt-get install -y wrk (or pass --no-http)")
        return 2
    ensure_data(DEFAULT_DATA_DIR, Scenario())
    data = (DEFAULT_DATA_DIR / "customer_stats.parquet").resolve()
    table = pd.read_parquet(data)
    python = None if args.no_feast else ensure_feast_venv()
    stores = ["sqlite"] + ([] if args.no_redis or not redis_is_up() else ["redis"])
    load_start = os.getloadavg()
    rounds, round_ratios, raw, checksums = [], [], [], []
    for r in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="online-bench-") as tmp:
            work = Path(tmp)
            shipyard = {}
            for store in stores:
                log(f"round {r + 1}: Shipyard SDK on {store}")
                shipyard[store] = shipyard_round(work / f"shipyard_{store}", data, table, store,
                                                 args)
            feast = None
            if python is not None:
                log(f"round {r + 1}: Feast SDK on sqlite")
                feast = feast_round(python, work / "feast", data, args)
            http: dict[str, dict[str, Any]] = {}
            if not args.no_http:
                log(f"round {r + 1}: shipyard serve-features")
                http["shipyard"] = shipyard_http(work / "shipyard_sqlite", work, args)
                if python is not None:
                    log(f"round {r + 1}: feast serve")
                    http["feast"] = feast_http(python, work / "feast", work, args)
            fig = figures(shipyard, feast, http)
            rounds.append(fig)
            round_ratios.append(ratios(fig))
            raw.append({"shipyard": shipyard, "feast": feast, "http": http})
            checksums.append({k: v["checksum_f1"] for k, v in shipyard.items()}
                             | ({"feast": feast["checksum_f1"]} if feast else {}))
            log(f"round {r + 1}: {json.dumps(round_ratios[-1])}")
    median = median_figures(rounds)
    median_ratios = {k: statistics.median([rr[k] for rr in round_ratios if k in rr])
                     for k in round_ratios[0]}
    sums = {round(v, 6) for c in checksums for v in c.values()}
    report = {
        "benchmark": "online store and feature server",
        "scenario": {"feature_rows": len(table), "entities": int(table["customer_id"].nunique()),
                     "features": FEATURES, "online_write_rows": args.write_rows,
                     "push_rows": args.push_rows, "sdk_reads_1": args.reads_1,
                     "sdk_reads_100": args.reads_100, "http_seconds": args.http_seconds,
                     "server_workers": args.workers, "stores": stores,
                     "load_client": "wrk 4.1 (Lua script: POST body with a random entity)"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "loadavg_start": load_start,
                    "loadavg_end": os.getloadavg()},
        "median": median,
        "ratios_median": median_ratios,
        "ratios_per_round": round_ratios,
        "targets": target_report(median, median_ratios),
        "results_agree": len(sums) == 1,
        "checksums": checksums,
        "rounds": rounds,
    }
    text = json.dumps(report, indent=2)
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(text + "\n")
    print(text)
    log(f"report also written to {RESULT_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
