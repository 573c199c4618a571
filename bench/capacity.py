"""Capacity plan and autoscaling simulation for the model server, from a measured pod.

1. One pod: `shipyard serve` (one worker, the demo's fraud model with online feature lookup,
   the bench/serving.py project) is started, its time to ready measured, and loaded with `wrk`
   at several concurrencies (`--repeat` rounds, medians). Or `--serving-json` reads the
   medians of an earlier bench/serving.py run instead of measuring.
2. A capacity plan for 1,000, 10,000 and 100,000 predictions/s: pods at the HPA's target
   utilization (the headroom a spike needs while new pods start), with a floor for
   availability, and nodes for those pods.
3. A simulation of the HorizontalPodAutoscaler on a traffic curve with a 10x spike, with the
   autoscaler's own rule (desired = ceil(current x metric / target), 10% tolerance, the
   scale-up policies and the scale-down stabilization window of deploy/kubernetes), pods
   that become ready only after the measured start time, and per-pod capacity: what exceeds
   the ready pods' capacity is shed with 503 (the server's bounded queue). It reports pods
   over time and the requests that would have been shed, for the base settings and
   variants (no stabilization, a slower pod start, a higher floor).

    .venv/bin/python bench/capacity.py [--duration 5] [--repeat 3] [--serving-json FILE]

JSON on stdout (and in bench/.data/capacity/result.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / ".data" / "capacity"
TARGETS = (1_000, 10_000, 100_000)
CONCURRENCIES = (8, 32, 64)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- 1. one pod, measured ------------------------------------------------------------------

def measure_pod(duration: float, repeat: int) -> dict[str, Any]:
    """Start one model server, time it to ready, and load it with wrk at each concurrency."""
    sys.path.insert(0, str(BENCH_DIR))
    import serving  # bench/serving.py: the fraud project, the server runner and wrk

    serving.DATA.mkdir(parents=True, exist_ok=True)
    info = serving.prepare()
    bodies = serving.bodies(info, "shipyard")
    script = serving.lua_script(bodies, OUT / "bodies.lua")
    started = time.monotonic()
    server = serving.Server("capacity", "shipyard", [
        sys.executable, "-m", "shipyard.cli.main", "serve", "-p", str(serving.DATA / "project"),
        "--port", "{port}", "--log-level", "warning"], "/v1/models/fraud/predict",
        ready="/readyz")
    try:
        server.wait_ready()
        ready_s = time.monotonic() - started
        log(f"server ready in {ready_s:.1f} s")
        runs: dict[int, list[dict[str, Any]]] = {c: [] for c in CONCURRENCIES}
        serving.run_wrk(server, script, 8, 1)  # warm-up
        for round_ in range(repeat):
            for connections in CONCURRENCIES:
                result = serving.run_wrk(server, script, connections, duration)
                runs[connections].append(result)
                log(f"round {round_ + 1}/{repeat} c{connections}: {json.dumps(result)}")
    finally:
        server.stop()
    levels = {str(c): {key: statistics.median(r[key] for r in results)
                       for key in ("rps", "p50_ms", "p99_ms")}
              | {"errors": sum(r["errors"] for r in results)}
              for c, results in runs.items()}
    return {"source": "measured", "ready_seconds": round(ready_s, 2), "levels": levels,
            "runs": {str(c): r for c, r in runs.items()}}


def pod_from_serving_json(path: Path, server: str = "shipyard") -> dict[str, Any]:
    """The per-pod figures of an earlier bench/serving.py run (its medians)."""
    row = json.loads(path.read_text())["medians"][server]
    levels = {c.removeprefix("c"): {"rps": row[f"{c}_rps"], "p50_ms": row[f"{c}_p50_ms"],
                                    "p99_ms": row[f"{c}_p99_ms"], "errors": 0}
              for c in ("c8", "c64")}
    return {"source": str(path), "ready_seconds": None, "levels": levels}


def pod_capacity(pod: dict[str, Any], p99_slo_ms: float) -> dict[str, Any]:
    """The most requests/s a pod served with its p99 within the SLO (else its best)."""
    levels = pod["levels"]
    within = {c: v for c, v in levels.items() if v["p99_ms"] <= p99_slo_ms and not v["errors"]}
    pool = within or levels
    best = max(pool, key=lambda c: pool[c]["rps"])
    return {"rps": pool[best]["rps"], "at_concurrency": int(best),
            "p99_ms": pool[best]["p99_ms"], "meets_slo": bool(within)}


# -- 2. the capacity plan ------------------------------------------------------------------

@dataclass(frozen=True)
class PlanOptions:
    """Sizing assumptions (every one is printed with the plan)."""

    target_utilization: float = 0.6  # what the HPA aims for: 40% headroom for spikes
    min_pods: int = 3  # one per zone: a zone or a node can go
    pod_cpu: float = 1.0  # the pod's CPU request: one uvicorn worker per core
    node_cpu: float = 16.0  # vCPUs of a node
    node_allocatable: float = 0.875  # what the kubelet, system daemons leave for pods
    workers_per_pod: int = 1


def plan(per_pod_rps: float, options: PlanOptions) -> list[dict[str, Any]]:
    """Pods and nodes for each target rate."""
    rows = []
    usable = per_pod_rps * options.target_utilization
    pods_per_node = max(1, math.floor(options.node_cpu * options.node_allocatable
                                      / options.pod_cpu))
    for rate in TARGETS:
        pods = max(options.min_pods, math.ceil(rate / usable))
        peak_pods = max(options.min_pods, math.ceil(rate / per_pod_rps))  # at 100% per pod
        rows.append({"predictions_per_s": rate, "pods": pods, "pods_at_full_load": peak_pods,
                     "nodes": math.ceil(pods / pods_per_node), "pods_per_node": pods_per_node,
                     "cpu_cores": round(pods * options.pod_cpu, 1),
                     "hpa_target_rps_per_pod": round(usable)})
    return rows


# -- 3. the HPA, simulated -----------------------------------------------------------------

@dataclass(frozen=True)
class HpaOptions:
    """The autoscaler of deploy/kubernetes (prod overlay) and the pod's behaviour."""

    target_rps: float  # the Pods metric's averageValue
    min_replicas: int = 3
    max_replicas: int = 40
    sync_seconds: int = 15  # --horizontal-pod-autoscaler-sync-period
    tolerance: float = 0.1
    scale_up_window_s: int = 0
    scale_down_window_s: int = 300
    up_percent: float = 100.0  # per 15 s
    up_pods: int = 4  # per 15 s (the larger of the two policies applies)
    down_percent: float = 50.0  # per 60 s
    metric_window_s: int = 60  # rate(...[1m]) in the adapter rule
    metric_delay_s: int = 30  # scrape interval + adapter cache
    startup_s: float = 10.0  # from pod creation to /readyz (schedule, pull, model load)


def traffic(base_rps: float, *, spike: float = 10.0, minutes: int = 40) -> list[float]:
    """Requests/s per second: steady, a 10x spike ramping up in 60 s, held 10 min, back."""
    curve = []
    for t in range(minutes * 60):
        if t < 600:
            rate = base_rps
        elif t < 660:
            rate = base_rps * (1 + (spike - 1) * (t - 600) / 60)
        elif t < 1260:
            rate = base_rps * spike
        elif t < 1380:
            rate = base_rps * (spike - (spike - 1) * (t - 1260) / 120)
        else:
            rate = base_rps
        curve.append(rate)
    return curve


def simulate(curve: list[float], per_pod_rps: float, hpa: HpaOptions) -> dict[str, Any]:
    """Replay `curve` (one rate per second) under the HPA; pods over time and requests shed."""
    replicas = hpa.min_replicas
    starting: list[float] = []  # ready times of pods not ready yet
    ready = replicas
    offered: list[float] = []  # requests/s each second
    recommendations: list[tuple[int, int]] = []  # (time, desired) for the stabilization windows
    last_down = -10**9
    up_events: list[tuple[int, int]] = []  # (time, pods added) for the rate policies
    timeline, shed_total, offered_total, over_s = [], 0.0, 0.0, 0
    for t, rate in enumerate(curve):
        ready += sum(1 for r in starting if r <= t)
        starting = [r for r in starting if r > t]
        capacity = ready * per_pod_rps
        shed = max(0.0, rate - capacity)
        shed_total += shed
        offered_total += rate
        over_s += shed > 0
        offered.append(rate)  # 503s are requests too: the counter the adapter reads counts them
        if t % hpa.sync_seconds == 0 and t >= hpa.metric_delay_s:
            end = t - hpa.metric_delay_s + 1
            window = offered[max(0, end - hpa.metric_window_s):end]
            total = sum(window) / len(window)  # the sum of the pods' rates, as Prometheus saw it
            ratio = total / (hpa.target_rps * replicas)
            # the rule: desired = ceil(current x metric / target), skipped within tolerance. On
            # a scale-up the pods without metrics yet (starting) count as 0, so current x
            # metric is the sum of the measured pods' rates
            desired = replicas if abs(ratio - 1) <= hpa.tolerance else math.ceil(
                total / hpa.target_rps)
            desired = min(max(desired, hpa.min_replicas), hpa.max_replicas)
            recommendations.append((t, desired))
            if desired > replicas:
                window_up = [d for (s, d) in recommendations if s > t - hpa.scale_up_window_s]
                target = min(window_up or [desired])
                # the policies bound the growth over their period from the period's start
                period_start = replicas - sum(n for (s, n) in up_events if s > t - 15)
                limit = max(math.floor(period_start * hpa.up_percent / 100), hpa.up_pods)
                new = max(0, min(target, period_start + limit) - replicas)
                if new:
                    up_events.append((t, new))
                    starting += [t + hpa.startup_s] * new
                    replicas += new
            elif desired < replicas:
                window_down = [d for (s, d) in recommendations
                               if s > t - hpa.scale_down_window_s]
                target = max(window_down or [desired])
                if target < replicas and t - last_down >= 60:
                    floor = math.ceil(replicas * (1 - hpa.down_percent / 100))
                    new_replicas = max(target, floor)
                    removed = replicas - new_replicas
                    replicas = new_replicas
                    ready = max(0, ready - removed)  # ready pods go first (SIGTERM drains)
                    last_down = t
        if t % hpa.sync_seconds == 0:
            timeline.append({"t_s": t, "offered_rps": round(rate), "replicas": replicas,
                             "ready": ready, "shed_rps": round(shed)})
    return {"timeline": timeline, "shed_requests": round(shed_total),
            "offered_requests": round(offered_total),
            "shed_fraction": round(shed_total / offered_total, 5),
            "seconds_shedding": over_s, "max_replicas": max(p["replicas"] for p in timeline),
            "pod_seconds": sum(p["replicas"] for p in timeline) * hpa.sync_seconds}


def scenarios(per_pod_rps: float, startup_s: float) -> dict[str, Any]:
    """The base autoscaler and variants on the same 10x spike."""
    target = per_pod_rps * PlanOptions().target_utilization
    base_rate = 3 * target * 0.8  # the floor of 3 pods at 80% of their target
    curve = traffic(base_rate)
    base = HpaOptions(target_rps=target, startup_s=startup_s)
    variants = {
        "base": base,
        "slow_start_60s": replace(base, startup_s=60.0),
        "no_scale_down_window": replace(base, scale_down_window_s=0),
        "up_policy_4_pods_only": replace(base, up_percent=0.0),
        "min_replicas_6": replace(base, min_replicas=6),
        "fast_metrics_30s_window_15s_delay": replace(base, metric_window_s=30, metric_delay_s=15),
    }
    out: dict[str, Any] = {"curve": {"base_rps": round(base_rate), "spike": 10,
                                     "spike_rps": round(base_rate * 10),
                                     "ramp_s": 60, "hold_s": 600, "minutes": len(curve) // 60}}
    for name, options in variants.items():
        result = simulate(curve, per_pod_rps, options)
        if name != "base":
            result.pop("timeline")
        out[name] = {"options": asdict(options), **result}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians reported)")
    parser.add_argument("--serving-json", type=Path, help="bench/serving.py's result.json: "
                                                          "use its medians, measure nothing")
    parser.add_argument("--reuse", action="store_true", help="reuse the pod measured by the "
                                                            "last run (its --output)")
    parser.add_argument("--p99-slo-ms", type=float, default=100.0)
    parser.add_argument("--startup-s", type=float, help="pod start to ready (default: measured "
                                                        "+ 5 s for scheduling and pull)")
    parser.add_argument("--output", type=Path, default=OUT / "result.json")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.serving_json:
        pod = pod_from_serving_json(args.serving_json)
    elif args.reuse and args.output.exists():
        pod = json.loads(args.output.read_text())["pod"]
    else:
        pod = measure_pod(args.duration, args.repeat)
    capacity = pod_capacity(pod, args.p99_slo_ms)
    startup = args.startup_s or round((pod["ready_seconds"] or 10.0) + 5.0, 1)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average": [round(x, 2) for x in os.getloadavg()]},
              "pod": pod, "p99_slo_ms": args.p99_slo_ms, "per_pod": capacity,
              "plan_options": asdict(PlanOptions()),
              "plan": plan(capacity["rps"], PlanOptions()),
              "autoscaling": {"startup_s": startup, **scenarios(capacity["rps"], startup)}}
    args.output.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
