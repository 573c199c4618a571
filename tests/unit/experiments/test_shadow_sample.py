"""Shadow sampling: a fixed, hash-chosen share of units is shadowed, checked and stored."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.assignment import assign
from shipyard.experiments.spec import Experiment, build, in_shadow_sample

VARIANTS = {"control": "fraud@champion", "treatment": "fraud/2"}
UNITS = range(1, 10_001)


def _make(name: str = "shadow-1", **changes: Any) -> Experiment:
    args: dict[str, Any] = {
        "model": "fraud", "variants": VARIANTS, "weights": None, "unit": "customer_id",
        "mode": "shadow", "metrics": [], "guardrails": [], "ramp": None, "ramp_every": None,
        "seed": None, "coverage": 1.0, "label": "label", "shadow_sample": 0.1}
    args.update(changes)
    return build(name, **args)


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5, 0.9])
def test_the_sampled_share_is_the_rate_within_a_binomial_bound(rate: float) -> None:
    e = _make(shadow_sample=rate)
    sampled = sum(e.shadowed(u) for u in UNITS)
    bound = 4 * math.sqrt(len(UNITS) * rate * (1 - rate))  # 4 sigma: a broken sampler fails
    assert abs(sampled - rate * len(UNITS)) <= bound, (sampled, rate)


def test_the_default_shadows_every_unit() -> None:
    e = _make(shadow_sample=1.0)
    assert e.shadow_sample == 1.0 and all(e.shadowed(u) for u in range(1, 200))
    assert _make(mode="ab", shadow_sample=1.0).shadow_sample == 1.0


def test_the_choice_is_sticky_nested_and_independent_of_the_variant_buckets() -> None:
    e = _make(weights={"control": 0.5, "treatment": 0.5})
    first = {u for u in UNITS if e.shadowed(u)}
    assert first == {u for u in UNITS if _make(weights={"control": 0.5, "treatment": 0.5})
                     .shadowed(u)}  # a rebuilt definition (another process) agrees
    assert first == {u for u in UNITS if e.shadowed(str(u))}  # ids as strings hash the same
    assert first == {u for u in UNITS if in_shadow_sample(e.key, u, 0.1)}
    assert {u for u in UNITS if in_shadow_sample(e.key, u, 0.05)} <= first  # raising keeps units
    # the sample has its own salt, so it is not the low end of the variant buckets
    halves = [[u for u in UNITS if assign(e.key, u, [0.5, 0.5]) == i] for i in (0, 1)]
    for half in halves:
        share = sum(1 for u in half if u in first) / len(half)
        assert abs(share - 0.1) <= 4 * math.sqrt(0.09 / len(half)), share
    other = _make("shadow-2")
    overlap = len(first & {u for u in UNITS if other.shadowed(u)})
    assert abs(overlap - 100) <= 4 * math.sqrt(10_000 * 0.01 * 0.99)  # independent per experiment


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.mark.parametrize("value, message", [
    (0, r"not in \(0, 1\]"), (-0.1, r"not in \(0, 1\]"), (1.5, r"not in \(0, 1\]"),
    (float("nan"), r"not in \(0, 1\]"), ("many", "not a number"), (True, "not a number"),
    (None, "not a number"),
])
def test_a_bad_sample_rate_is_invalid_input(value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _make(shadow_sample=value)


def test_a_sample_rate_outside_shadow_mode_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="mode='shadow' only"):
        _make(mode="ab", shadow_sample=0.5)


def test_the_sample_rate_round_trips_through_the_store(metadata_url: str) -> None:
    from shipyard.experiments.store import ExperimentStore
    from shipyard.metadata.db import Database

    if metadata_url.startswith("sqlite:///"):
        Path(metadata_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    store = ExperimentStore(Database(metadata_url), "proj")
    e = _make(shadow_sample=0.25)
    stored = store.insert(e)
    assert stored.shadow_sample == 0.25 and stored.spec() == e.spec()
    store.change(e.name, "start")
    running = store.running_for("fraud")
    assert running is not None and running.shadow_sample == 0.25
    assert [u for u in range(1, 500) if running.shadowed(u)] == \
        [u for u in range(1, 500) if e.shadowed(u)]
    assert store.list()[0].describe()["shadow_sample"] == 0.25
    assert store.history(e.name)[0]["detail"]["shadow_sample"] == 0.25
    full = store.insert(_make("shadow-full", shadow_sample=1.0))
    assert full.shadow_sample == 1.0


def test_rows_stored_before_sampling_existed_shadow_every_unit() -> None:
    import json
    from types import SimpleNamespace

    from shipyard.experiments.spec import from_row

    spec = _make(shadow_sample=1.0).spec()
    del spec["shadow_sample"]
    now = _now()
    row = SimpleNamespace(name="old", model="fraud", mode="shadow", status="running",
                          spec=json.dumps(spec), created_at=now, started_at=now, stopped_at=None,
                          updated_at=now, decision=None)
    assert from_row(row).shadow_sample == 1.0
