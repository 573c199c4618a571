"""Model serving: Shipyard (with online feature lookup) against `mlflow models serve` and BentoML.

The model is the demo's: a 100-iteration HistGradientBoostingClassifier on the numeric
features of the `fraud_v2` feature service, trained on a generated fraud history (one
OpenMP thread everywhere: OMP_NUM_THREADS=1 for every server). Servers, all started once,
all one process, measured in turns (round-robin, `--repeat` rounds, medians reported):

* shipyard        `shipyard serve`: entity keys in, features read from the SQLite online
                  store and computed on demand, native scikit-learn model, micro-batching
* shipyard-onnx   the same deployment on the model's ONNX copy (runtime: onnx)
* shipyard-1      the native deployment with max_batch_size 1 (what batching buys)
* mlflow          `mlflow models serve` (bench/.venv-mlflow) on the same fitted model; the
                  client sends the feature row (no lookup)
* bentoml         BentoML (bench/.venv-bentoml) on the same model, feature row sent; and
* bentoml-batch   with BentoML's adaptive batching
* shipyard-shadow the ONNX deployment of a copy of the model (`fraud_shadowed`) under a
                  running shadow experiment: control answers, the treatment (the same model
                  as version 2) runs on every request off the response path; its p50/p99
                  minus shipyard-onnx's, per round (median), is what shadow mode adds
* shipyard-shadow-10  the same under a shadow experiment with shadow_sample=0.1 (model
                  `fraud_shadowed10`): the treatment runs on a fixed 10% of the customers

Per server: one client at a fixed 500 requests/s (a separate process; p50/p99), then `wrk`
with 8 and 64 connections (throughput, p50/p99). Each round also runs the single client on
Shipyard's `GET /v2/health/live` (`http_floor`): the part of a latency that is HTTP, uvicorn
and the Python client, not prediction. Every request is a different transaction
from a pool of 1,000 recent ones; each server gets the same ones.

    .venv/bin/python bench/serving.py [--duration 8] [--repeat 3] [--no-mlflow] [--no-bentoml]
    .venv/bin/python bench/serving.py --shadow [--duration 3] [--repeat 12]

`--shadow` measures only what shadow mode adds: shipyard-onnx and both shadow deployments with the
single client, in many short alternating rounds (the difference per round, then the median).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA = BENCH_DIR / ".data" / "serving"
BENTO_VENV = BENCH_DIR / ".venv-bentoml"
CUSTOMERS, DAYS, POOL = 2_000, 21, 1_000
SINGLE_RATE = 500  # requests/s of the single client
DEPLOYMENTS = """
deployments:
  - {model: fraud@champion, name: fraud}
  - {model: fraud@champion, name: fraud_onnx, runtime: onnx}
  - {model: fraud@champion, name: fraud_unbatched, max_batch_size: 1}
  - {model: fraud_shadowed@champion, name: fraud_shadow, runtime: onnx}
  - {model: fraud_shadowed10@champion, name: fraud_shadow10, runtime: onnx}
"""
SHADOWED = "fraud_shadowed"
SHADOWS = {"shipyard-shadow": (SHADOWED, 1.0), "shipyard-shadow-10": ("fraud_shadowed10", 0.1)}
FLOOR = "http-floor"  # the single client on a route that does no work


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the project, the model and the request pool ------------------------------------------

def prepare() -> dict[str, Any]:
    """Build (or reuse) the fraud project, the registered model and the request bodies."""
    scenario = {"customers": CUSTOMERS, "days": DAYS, "pool": POOL, "max_iter": 100}
    marker = DATA / "scenario.json"
    if marker.exists() and json.loads(marker.read_text()).get("scenario") == scenario:
        return json.loads(marker.read_text())
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from shipyard.cli.demo import build_project
    from shipyard.core.time import utc_now
    from shipyard.examples.fraud.generate import generate

    log(f"building the fraud project in {DATA / 'project'} ...")
    root = DATA / "project"
    with build_project(root) as project:
        end = utc_now().replace(minute=0, second=0, microsecond=0)
        paths = generate(root / "data", customers=CUSTOMERS, days=DAYS, end=end)
        project.apply()
        project.features.materialize(None, utc_now())
        labels = pd.read_parquet(paths["labels"])
        train = project.features.get_historical_features(labels, feature_service="fraud_v2")
        columns = [c for c in train.select_dtypes("number").columns
                   if c not in ("customer_id", "merchant_id", "is_fraud")]
        with threadpool_limits(1):
            model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(
                train[columns], train["is_fraud"])
        version = project.models.register("fraud", model, feature_service="fraud_v2", onnx=True)
        project.models.set_alias("fraud", "champion", version.version)
        with (DATA / "model.pkl").open("wb") as file:
            pickle.dump(model, file)
        recent = labels.tail(POOL)
        entities = [{"entities": {"customer_id": int(r.customer_id),
                                  "merchant_id": int(r.merchant_id)},
                     "request": {"amount": float(r.amount)}} for r in recent.itertuples()]
        online = project.features.get_online_features(
            feature_service="fraud_v2",
            entity_rows=[{**e["entities"], **e["request"]} for e in entities])
        online["amount"] = [e["request"]["amount"] for e in entities]
        rows = [[_number(online[c][i]) for c in columns] for i in range(len(entities))]
    (root / "shipyard.yaml").write_text(f"project: fraud\n{DEPLOYMENTS}")
    info = {"scenario": scenario, "columns": columns, "entities": entities, "rows": rows}
    marker.write_text(json.dumps(info))
    return info


def prepare_shadow() -> str:
    """Per entry of SHADOWS a model (v1 = champion, v2 = the same model) and a running shadow
    experiment on it with that shadow sample rate; returns the experiments' names."""
    import shipyard as sy

    root = DATA / "project"
    (root / "shipyard.yaml").write_text(f"project: fraud\n{DEPLOYMENTS}")
    names = []
    with sy.Project.load(root) as project:
        for shadowed, rate in SHADOWS.values():
            versions = [v.version for v in project.models.list_versions(shadowed) if v.has_onnx]
            if len(versions) < 2:
                with (DATA / "model.pkl").open("rb") as file:
                    model = pickle.load(file)  # noqa: S301 - our own file, written by prepare()
                versions = [project.models.register(shadowed, model, feature_service="fraud_v2",
                                                    onnx=True).version for _ in range(2)]
            control, treatment = sorted(versions)[-2:]
            project.models.set_alias(shadowed, "champion", control)
            for running in project.experiments.list(model=shadowed, status="running"):
                project.experiments.stop(running.name)
            name = f"bench-{shadowed.replace('_', '-')}-{int(time.time())}"
            project.experiments.create(name, model=shadowed, mode="shadow", unit="customer_id",
                                       variants={"control": f"{shadowed}@champion",
                                                 "treatment": f"{shadowed}/{treatment}"},
                                       shadow_sample=rate, start=True)
            names.append(f"{name} ({shadowed}, shadow_sample={rate:g})")
    return ", ".join(names)


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def bodies(info: dict[str, Any], kind: str) -> list[str]:
    """The request bodies of a server kind, one per pooled transaction."""
    if kind == "shipyard":
        return [json.dumps(e) for e in info["entities"]]
    if kind == "mlflow":
        return [json.dumps({"dataframe_split": {"columns": info["columns"], "data": [r]}})
                for r in info["rows"]]
    return [json.dumps({"input": [[float("nan") if v is None else v for v in r]]})
            .replace("NaN", "null") for r in info["rows"]]


# -- the servers --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A server process and what to send it."""

    def __init__(self, name: str, kind: str, command: list[str], path: str, *,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 port: int | None = None, ready: str = "/") -> None:
        self.name, self.kind, self.path, self.ready_path = name, kind, path, ready
        self.port = port or free_port()
        self.command = [c.replace("{port}", str(self.port)) for c in command]
        self.log = DATA / f"{name}.log"
        self.process = subprocess.Popen(
            self.command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=cwd,
            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 "MKL_NUM_THREADS": "1", **(env or {})}, start_new_session=True)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", self.ready_path)
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not get ready: see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def start_servers(args: argparse.Namespace) -> list[Server]:
    """Start every server (they start in parallel and then sit idle between their turns)."""
    project = str(DATA / "project")
    shipyard = Server("shipyard", "shipyard", [
        sys.executable, "-m", "shipyard.cli.main", "serve", "-p", project, "--port", "{port}",
        "--log-level", "warning"], "/v1/models/fraud/predict", ready="/readyz")
    servers = [shipyard,
               _alias(shipyard, "shipyard-onnx", "/v1/models/fraud_onnx/predict"),
               _alias(shipyard, "shipyard-1", "/v1/models/fraud_unbatched/predict"),
               _alias(shipyard, "shipyard-shadow", "/v1/models/fraud_shadow/predict"),
               _alias(shipyard, "shipyard-shadow-10", "/v1/models/fraud_shadow10/predict")]
    model = str(DATA / "model.pkl")
    if not args.no_mlflow:
        from registry import ensure_mlflow_venv

        python = ensure_mlflow_venv()
        servers.append(Server("mlflow", "mlflow", [
            str(python), str(BENCH_DIR / "_mlflow_serve.py"), "--model", model,
            "--dir", str(DATA), "--port", "{port}"], "/invocations", ready="/ping"))
    if not args.no_bentoml:
        bentoml = ensure_bentoml_venv() / "bin" / "bentoml"
        for name, batch in (("bentoml", "0"), ("bentoml-batch", "1")):
            servers.append(Server(name, "bentoml", [
                str(bentoml), "serve", "_bento_service:Fraud", "--host", "127.0.0.1",
                "--port", "{port}"], "/predict", cwd=BENCH_DIR, ready="/readyz",
                env={"BENCH_MODEL_PKL": model, "BENCH_BATCHABLE": batch}))
    try:
        for server in servers:
            server.wait_ready()
            log(f"{server.name} ready on port {server.port}")
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def _alias(server: Server, name: str, path: str) -> Server:
    """Another deployment of an already started server."""
    alias = object.__new__(Server)
    alias.__dict__.update(server.__dict__, name=name, path=path)
    return alias


def ensure_bentoml_venv() -> Path:
    """Create bench/.venv-bentoml with BentoML and our scikit-learn version, once."""
    from importlib import metadata

    python = BENTO_VENV / "bin" / "python"
    check = ("import bentoml, sklearn; assert sklearn.__version__ == "
             f"{metadata.version('scikit-learn')!r}")
    if python.exists() and subprocess.run([str(python), "-c", check],
                                          capture_output=True).returncode == 0:
        return BENTO_VENV
    log(f"creating {BENTO_VENV} (bentoml, scikit-learn=={metadata.version('scikit-learn')}) ...")
    subprocess.run(["python3.11", "-m", "venv", str(BENTO_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "bentoml", f"scikit-learn=={metadata.version('scikit-learn')}"],
                   check=True, stdout=sys.stderr)
    return BENTO_VENV


# -- the load ------------------------------------------------------------------------------

def single_client(port: int, path: str, body_file: Path, seconds: float, rate: int
                  ) -> dict[str, Any]:
    """One keep-alive client at a fixed rate, in this (separate) process (GET if no bodies)."""
    bodies = [b.encode() for b in json.loads(body_file.read_text())] if body_file.name != "-" \
        else []
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"content-type": "application/json"}
    latencies, errors, i = [], 0, 0
    interval = 1 / rate
    start = next_at = time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        if next_at > now:
            time.sleep(next_at - now)
        next_at += interval
        sent = time.perf_counter()
        if bodies:
            conn.request("POST", path, bodies[i % len(bodies)], headers)
        else:
            conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - sent)
        errors += response.status != 200
        i += 1
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "errors": errors, "rate": round(n / seconds, 1),
            "p50_ms": round(latencies[n // 2] * 1e3, 3),
            "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1e3, 3)}


def run_single(server: Server, body_file: Path, seconds: float, path: str | None = None
               ) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--client", str(server.port), path or server.path,
         str(body_file), str(seconds)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def lua_script(bodies: list[str], target: Path) -> Path:
    """A wrk script that POSTs the bodies in turn (one connection per wrk thread)."""
    items = ",\n".join(f"[==[{b}]==]" for b in bodies)
    target.write_text(
        f"local bodies = {{\n{items}\n}}\nlocal i = 0\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\nend\n")
    return target


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit], 3)


def run_wrk(server: Server, script: Path, connections: int, seconds: float) -> dict[str, Any]:
    """Throughput and latency with `connections` concurrent keep-alive clients."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s",
         "-s", str(script), f"http://127.0.0.1:{server.port}{server.path}"],
        capture_output=True, text=True, check=True)
    out = done.stdout
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", out, re.M))
    if "50" not in percentiles or "99" not in percentiles:
        raise RuntimeError(f"wrk did not report latencies for {server.name}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": round(rate, 1), "p50_ms": _ms(percentiles["50"]),
            "p99_ms": _ms(percentiles["99"]), "errors": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else None}


def measure(servers: list[Server], info: dict[str, Any], seconds: float, repeat: int
            ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every scenario of every server, round-robin, `repeat` rounds."""
    files = {}
    for kind in {s.kind for s in servers}:
        kind_bodies = bodies(info, kind)
        body_file = DATA / f"bodies-{kind}.json"
        body_file.write_text(json.dumps(kind_bodies))
        files[kind] = (body_file, lua_script(kind_bodies, DATA / f"bodies-{kind}.lua"))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.name: {"single": [], "c8": [], "c64": []} for s in servers}
    floor: list[dict[str, Any]] = []
    results[FLOOR] = {"single": floor}
    for round_ in range(repeat):
        # the same client on Shipyard's cheapest route: HTTP, uvicorn and the client's share
        floor.append(run_single(servers[0], Path("-"), seconds, "/v2/health/live"))
        log(f"round {round_ + 1}/{repeat} {FLOOR}: {json.dumps(floor[-1])}")
        for server in servers:
            body_file, script = files[server.kind]
            run_wrk(server, script, 8, 1)  # warm-up
            results[server.name]["single"].append(run_single(server, body_file, seconds))
            results[server.name]["c8"].append(run_wrk(server, script, 8, seconds))
            results[server.name]["c64"].append(run_wrk(server, script, 64, seconds))
            log(f"round {round_ + 1}/{repeat} {server.name}: "
                f"{json.dumps({k: v[-1] for k, v in results[server.name].items()})}")
    return results


def measure_shadow(servers: list[Server], info: dict[str, Any], seconds: float, repeat: int
                   ) -> dict[str, Any]:
    """The single client on shipyard-onnx and the shadow deployments in turns, `repeat` rounds."""
    body_file = DATA / "bodies-shipyard.json"
    body_file.write_text(json.dumps(bodies(info, "shipyard")))
    pair = {s.name: s for s in servers if s.name == "shipyard-onnx" or s.name in SHADOWS}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in pair}
    for server in pair.values():
        run_single(server, body_file, 1)  # warm-up
    for round_ in range(repeat):
        order = list(pair.values()) if round_ % 2 == 0 else list(pair.values())[::-1]
        for server in order:
            runs[server.name].append(run_single(server, body_file, seconds))
        last = {n: {k: r[-1][k] for k in ("rate", "p50_ms", "p99_ms")} for n, r in runs.items()}
        log(f"round {round_ + 1}/{repeat}: {json.dumps(last)}")
    added: dict[str, Any] = {}
    for name in SHADOWS:
        for key in ("p50_ms", "p99_ms"):
            diffs = [s[key] - b[key] for s, b in zip(runs[name], runs["shipyard-onnx"],
                                                     strict=True)]
            added.setdefault(name, {})[key] = {"median": round(statistics.median(diffs), 3),
                                               "per_round": [round(d, 3) for d in diffs]}
    medians = {n: {k: round(statistics.median(r[k] for r in rs), 3)
                   for k in ("rate", "p50_ms", "p99_ms")} for n, rs in runs.items()}
    return {"medians": medians, "shadow_added_ms": added, "runs": runs}


def summarize(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Medians per server and scenario, and the same-run throughput ratios."""
    def median(runs: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    table: dict[str, Any] = {}
    floor = results.pop(FLOOR, None)
    for name, scenarios in results.items():
        row = {"single_p50_ms": median(scenarios["single"], "p50_ms"),
               "single_p99_ms": median(scenarios["single"], "p99_ms"),
               "single_rate": median(scenarios["single"], "rate")}
        for c in ("c8", "c64"):
            row.update({f"{c}_rps": median(scenarios[c], "rps"),
                        f"{c}_p50_ms": median(scenarios[c], "p50_ms"),
                        f"{c}_p99_ms": median(scenarios[c], "p99_ms")})
        row["errors"] = sum(r["errors"] for runs in scenarios.values() for r in runs)
        table[name] = row
    shadow: dict[str, dict[str, float]] = {}
    for name in (n for n in SHADOWS if n in results and "shipyard-onnx" in results):
        base = results["shipyard-onnx"]
        for scenario in ("single", "c8"):
            for key in ("p50_ms", "p99_ms"):
                added = [s[key] - b[key] for s, b in zip(results[name][scenario],
                                                         base[scenario], strict=True)]
                shadow.setdefault(name, {})[f"{scenario}_{key}"] = round(
                    statistics.median(added), 3)
        for c in ("c8", "c64"):  # same-round throughput against the model without a shadow
            kept = [s["rps"] / b["rps"] for s, b in zip(results[name][c], base[c], strict=True)]
            shadow[name][f"{c}_rps_vs_onnx"] = round(statistics.median(kept), 3)
    others = [n for n in table if not n.startswith("shipyard")]
    ratios = {}
    for c in ("c8", "c64"):
        best = max((table[n][f"{c}_rps"] for n in others), default=None)
        if best:
            ratios[c] = {n: round(table[n][f"{c}_rps"] / best, 2) for n in table
                         if n.startswith("shipyard")}
    http_floor = {"single_p50_ms": median(floor["single"], "p50_ms"),
                  "single_p99_ms": median(floor["single"], "p99_ms")} if floor else None
    if floor:
        results[FLOOR] = floor
    return {"medians": table, "throughput_vs_best_other": ratios, "shadow_added_ms": shadow,
            "http_floor": http_floor}


def print_table(summary: dict[str, Any]) -> None:
    head = ("server", "1 client p50", "p99", "c8 req/s", "c8 p50", "c8 p99", "c64 req/s",
            "c64 p50", "c64 p99", "errors")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, r in summary["medians"].items():
        print(f"| {name} | {r['single_p50_ms']:.2f} ms | {r['single_p99_ms']:.2f} ms | "
              f"{r['c8_rps']:,.0f} | {r['c8_p50_ms']:.2f} ms | {r['c8_p99_ms']:.2f} ms | "
              f"{r['c64_rps']:,.0f} | {r['c64_p50_ms']:.2f} ms | {r['c64_p99_ms']:.2f} ms | "
              f"{r['errors']} |")
    for c, ratios in summary["throughput_vs_best_other"].items():
        print(f"{c}: throughput / best of MLflow and BentoML: {ratios}")
    if summary.get("http_floor"):
        print(f"HTTP floor (the single client on GET /v2/health/live): {summary['http_floor']}")
    if summary["shadow_added_ms"]:
        print(f"shadow mode adds (median over rounds, ms): {summary['shadow_added_ms']}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, path, body_file, seconds = sys.argv[2:6]
        print(json.dumps(single_client(int(port), path, Path(body_file), float(seconds),
                                       SINGLE_RATE)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per scenario")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians reported)")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--no-bentoml", action="store_true")
    parser.add_argument("--shadow", action="store_true",
                        help="only the shadow-mode cost (see the module doc)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    info = prepare()
    log(f"shadow experiments running: {prepare_shadow()}")
    if args.shadow:
        args.no_mlflow = args.no_bentoml = True
    servers = start_servers(args)
    if args.shadow:
        try:
            shadow = measure_shadow(servers, info, args.duration, args.repeat)
        finally:
            for server in servers:
                server.stop()
        shadow.update(duration_s=args.duration, repeat=args.repeat,
                      load_average=os.getloadavg())
        (args.output or DATA / "shadow.json").write_text(json.dumps(shadow, indent=2))
        print(json.dumps({k: shadow[k] for k in ("medians", "shadow_added_ms", "load_average")}))
        return
    try:
        results = measure(servers, info, args.duration, args.repeat)
    finally:
        for server in servers:
            server.stop()
    summary = summarize(results)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average": os.getloadavg()},
              "duration_s": args.duration, "repeat": args.repeat, **summary, "runs": results}
    output = args.output or DATA / "result.json"
    output.write_text(json.dumps(report, indent=2))
    print_table(summary)
    log(f"wrote {output}")


if __name__ == "__main__":
    main()
