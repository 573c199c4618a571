"""bench/capacity.py's plan and HPA simulation follow the autoscaler's rule (no timing here)."""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "capacity.py"


@pytest.fixture(scope="module")
def capacity() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_capacity", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_plan_sizes_pods_at_the_target_utilization(capacity: ModuleType) -> None:
    rows = capacity.plan(1_000.0, capacity.PlanOptions())
    assert [r["pods"] for r in rows] == [3, math.ceil(10_000 / 600), math.ceil(100_000 / 600)]
    assert rows[2]["nodes"] == math.ceil(rows[2]["pods"] / rows[2]["pods_per_node"])


def test_steady_traffic_within_tolerance_never_scales(capacity: ModuleType) -> None:
    hpa = capacity.HpaOptions(target_rps=100.0)
    result = capacity.simulate([3 * 100.0 * 1.05] * 900, 200.0, hpa)
    assert {p["replicas"] for p in result["timeline"]} == {3} and result["shed_requests"] == 0


def test_a_spike_scales_to_ceil_of_load_over_target_then_waits_to_scale_down(
        capacity: ModuleType) -> None:
    hpa = capacity.HpaOptions(target_rps=100.0, startup_s=10.0)
    curve = [250.0] * 300 + [2_500.0] * 600 + [250.0] * 900
    result = capacity.simulate(curve, 200.0, hpa)
    by_time = {p["t_s"]: p for p in result["timeline"]}
    assert by_time[885]["replicas"] == 25 == result["max_replicas"]  # ceil(2500 / 100)
    assert result["shed_requests"] > 0  # the pods start after the spike has arrived
    # the load falls at 900 s; the 300 s window holds the pods until after 1,200 s
    assert by_time[1185]["replicas"] == 25 and by_time[1785]["replicas"] == 3
    faster = capacity.simulate(curve, 200.0, replace(hpa, scale_down_window_s=0))
    assert faster["pod_seconds"] < result["pod_seconds"]
    ample = capacity.simulate(curve, 10_000.0, hpa)
    assert ample["shed_requests"] == 0


def test_the_scale_up_policy_bounds_growth_per_period(capacity: ModuleType) -> None:
    hpa = capacity.HpaOptions(target_rps=100.0, up_percent=0.0, up_pods=4, metric_delay_s=15)
    result = capacity.simulate([300.0] * 60 + [5_000.0] * 600, 10_000.0, hpa)
    steps = [b["replicas"] - a["replicas"] for a, b in zip(result["timeline"],
                                                           result["timeline"][1:], strict=False)]
    assert max(steps) == 4 and result["max_replicas"] == 40  # capped by maxReplicas
