"""Experiment definitions (checks, canary ramp, stickiness) and the guardrail monitor."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.guardrails import Guardrail, GuardrailMonitor, psi
from shipyard.experiments.spec import Metric, build

START = datetime(2026, 3, 1, tzinfo=UTC)
VARIANTS = {"control": "fraud@champion", "treatment": "fraud/2"}


def _make(**changes: object):  # type: ignore[no-untyped-def]
    args: dict = {"model": "fraud", "variants": VARIANTS, "weights": None, "unit": "customer_id",
                  "mode": "ab", "metrics": [], "guardrails": [], "ramp": None,
                  "ramp_every": None, "seed": None, "coverage": 1.0, "label": "label"}
    args.update(changes)
    return build("exp-1", **args)


def test_defaults_split_equally_and_the_first_variant_is_control() -> None:
    e = _make()
    assert e.control == "control" and e.weights == {"control": 0.5, "treatment": 0.5}
    assert e.key == "exp-1"


@pytest.mark.parametrize("changes, words", [
    ({"variants": {"control": "fraud@champion"}}, "two variants"),
    ({"variants": {"control": "fraud@champion", "treatment": "churn/2"}}, "not a version"),
    ({"weights": {"control": 0.5, "other": 0.5}}, "Weights name"),
    ({"weights": {"control": 0.7, "treatment": 0.7}}, "not a split"),
    ({"mode": "blue-green"}, "Mode"),
    ({"mode": "canary"}, "needs a ramp"),
    ({"ramp": [0.1, 0.5], "ramp_every": 60}, "for mode='canary' only"),
    ({"mode": "canary", "ramp": [(0.1, 0), (0.5, 0)]}, "not a schedule"),
    ({"guardrails": ["error_rate > 1"]}, "not understood"),
    ({"guardrails": ["cpu < 1"]}, "Unknown guardrail"),
    ({"metrics": ["loss", "loss"]}, "twice"),
])
def test_bad_definitions_say_what_is_wrong(changes: dict, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        _make(**changes)


def test_canary_ramp_follows_the_clock_and_moves_only_units_that_must_move() -> None:
    e = replace(_make(mode="canary", ramp=[0.01, 0.05, 0.25, 0.5], ramp_every=600),
                status="running", started_at=START)
    assert e.weights_at(START) == [0.99, 0.01]
    assert e.weights_at(START + timedelta(seconds=599)) == [0.99, 0.01]
    assert e.weights_at(START + timedelta(seconds=1300)) == [0.75, 0.25]
    assert e.weights_at(START + timedelta(days=3)) == [0.5, 0.5]
    units = range(1, 20_001)
    steps = [START + timedelta(seconds=s) for s in (0, 600, 1200, 1800)]
    treated = [{u for u in units if e.variant_of(u, at) == "treatment"} for at in steps]
    for before, after in zip(treated, treated[1:], strict=False):
        assert before <= after  # a unit in treatment stays there as the ramp grows
    assert [round(len(t) / len(units), 2) for t in treated] == [0.01, 0.05, 0.25, 0.5]
    assert replace(e, status="rolled_back").weights_at(steps[-1]) == [1.0, 0.0]


def test_experiments_on_one_model_assign_independently() -> None:
    a, b = _make(), build("exp-2", **{**_args(), "seed": None})
    same = np.mean([a.variant_of(u, START) == b.variant_of(u, START) for u in range(1, 10_001)])
    assert 0.47 < same < 0.53


def _args() -> dict:
    return {"model": "fraud", "variants": VARIANTS, "weights": None, "unit": "customer_id",
            "mode": "ab", "metrics": [], "guardrails": [], "ramp": None, "ramp_every": None,
            "coverage": 1.0, "label": "label"}


def test_metric_and_guardrail_parsing() -> None:
    assert Guardrail.parse("p99_latency_ms < 25") == Guardrail("p99_latency_ms", 25.0)
    assert Metric.parse("log_loss").higher_is_better is False
    assert Metric.parse({"name": "revenue", "kind": "ratio", "denominator": "orders"}).kind == "ratio"
    with pytest.raises(InvalidInputError, match="denominator"):
        Metric("revenue", kind="ratio")


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    assert psi(ref, rng.normal(0, 1, 5000)) < 0.01
    assert psi(ref, rng.normal(1.5, 1, 5000)) > 1.0
    assert psi([], ref) == 0.0


def test_monitor_breaches_only_with_enough_samples_and_only_for_treatment() -> None:
    monitor = GuardrailMonitor([Guardrail("error_rate", 0.1, min_samples=40),
                                Guardrail("p99_latency_ms", 50, min_samples=40),
                                Guardrail("prediction_psi", 0.5, min_samples=40)],
                               "control", check_every=10)
    for _ in range(100):
        monitor.record("control", error=True, seconds=0.2, scores=[0.1])  # control is not judged
    due = [monitor.record("treatment", error=i % 4 == 0, seconds=0.001, scores=[0.1])
           for i in range(39)]
    assert sum(due) == 3 and monitor.check() == []  # 39 < min_samples
    monitor.record("treatment", error=True, seconds=0.001, scores=[0.1])
    (breach,) = monitor.check()
    assert breach.guardrail.metric == "error_rate" and breach.value == pytest.approx(11 / 40)
    assert "error_rate < 0.1 breached by 'treatment'" in breach.reason


def test_monitor_catches_slow_and_shifted_treatments() -> None:
    monitor = GuardrailMonitor([Guardrail("p99_latency_ms", 50, min_samples=20),
                                Guardrail("prediction_psi", 0.5, min_samples=20)], "control")
    for i in range(50):
        monitor.record("control", error=False, seconds=0.001, scores=[i / 50])
        monitor.record("treatment", error=False, seconds=0.08, scores=[0.95 + i / 1000])
    assert {b.guardrail.metric for b in monitor.check()} == {"p99_latency_ms", "prediction_psi"}


@pytest.mark.parametrize(("value", "message"), [
    ("error_rate < .", "'.' is not a number"),
    ("p99_latency_ms < 5e", "'5e' is not a number"),
    ({"metric": "error_rate", "limit": 0.1}, "unknown key 'limit'"),
    ({"metric": "error_rate"}, "lacks key 'threshold'"),
    ({"metric": "error_rate", "threshold": "low"}, "'low' is not a number"),
])
def test_a_malformed_guardrail_is_invalid_input(value: object, message: str) -> None:
    # regression: float() raised ValueError and cls(**mapping) TypeError
    with pytest.raises(InvalidInputError, match=message):
        Guardrail.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "message"), [
    ({"metrics": [{"name": "x", "lower": True}]}, "unknown key 'lower'"),
    ({"metrics": [{"kind": "mean"}]}, "lacks key 'name'"),
    ({"weights": {"control": "half", "treatment": 0.5}}, "'half' is not a number"),
    ({"mode": "canary", "ramp": [(0.1,)]}, "not a \\(weight, after_seconds\\) pair"),
    ({"mode": "canary", "ramp": [{"weight": 0.1}]}, "lacks key 'after_seconds'"),
    ({"mode": "canary", "ramp": ["x", "y"], "ramp_every": 60}, "'x' is not a number"),
])
def test_malformed_metrics_weights_and_ramps_are_invalid_input(changes: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _make(**changes)
