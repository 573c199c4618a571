"""The model server under an experiment, in-process: routing by unit, the variant in the
answer and in the log, shadow copies off the response path, and guardrail rollbacks."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.serving.model_server import create_model_app
from shipyard.settings import DeploymentConfig
from tests.unit.serving.conftest import TOKEN

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BEARER = {"authorization": f"Bearer {TOKEN}"}
VARIANTS = {"control": "scorer@champion", "treatment": "scorer/2"}


class Constant:
    """A pickled test model: P(positive) is `p` for every row; `fail` raises instead."""

    def __init__(self, p: float, fail: bool = False) -> None:
        self.p, self.fail = p, fail

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(frame)[:, 1] > 0.5).astype(np.int64)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.fail and (frame["amount"] > 0).any():  # the warm-up row (zeros) passes
            raise RuntimeError("treatment is broken")
        p = np.full(len(frame), self.p)
        return np.column_stack([1 - p, p])


@pytest.fixture
def served(project: sy.Project, request: pytest.FixtureRequest) -> Iterator[sy.Project]:
    """`scorer` v1 (p=0.1, champion) and v2 (p=0.9; failing when parametrized with True)."""
    X = pd.DataFrame({"amount": [1.0]})
    broken = getattr(request, "param", False)
    project.models.register("scorer", Constant(0.1), signature=X, allow_pickle=True)
    project.models.register("scorer", Constant(0.9, fail=broken), signature=X, allow_pickle=True)
    project.models.set_alias("scorer", "champion", 1)
    settings = project.settings.model_copy(update={
        "deployments": [DeploymentConfig(model="scorer@champion", poll_seconds=0.05)],
        "prediction_log": project.settings.prediction_log.model_copy(
            update={"flush_interval_seconds": 0.05})})
    yield sy.Project(project.root, settings)


def _client(project: sy.Project) -> TestClient:
    return TestClient(create_model_app(project), raise_server_exceptions=False)


def _wait_routed(client: TestClient, name: str | None) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            (d,) = client.get("/v1/deployments", headers=BEARER).json()["deployments"]
            if (d["experiment"] or {}).get("name") == name:
                return
        time.sleep(0.02)
    raise AssertionError(f"the server did not pick up experiment {name!r}")


def _predict(client: TestClient, body: Any) -> dict[str, Any]:
    response = client.post("/v1/models/scorer/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _row(unit: int | None) -> dict[str, Any]:
    return {"amount": 1.0} | ({} if unit is None else {"customer_id": unit})


def test_requests_go_to_the_units_variant_and_the_log_says_which(served: sy.Project) -> None:
    e = served.experiments.create("ab", model="scorer", variants=VARIANTS, unit="customer_id",
                                  start=True)
    with _client(served) as client:
        _wait_routed(client, "ab")
        for unit in range(1, 41):
            answer = _predict(client, {"instances": [_row(unit)]})
            variant = e.variant_of(unit, e.started_at)  # type: ignore[arg-type]
            assert answer["variant"] == variant and answer["experiment"] == "ab"
            assert answer["version"] == (1 if variant == "control" else 2)
            assert answer["probabilities"][0][1] == (0.1 if variant == "control" else 0.9)
        units = list(range(100, 110))
        mixed = _predict(client, {"instances": [_row(u) for u in units]})
        expected = [e.variant_of(u, e.started_at) for u in units]  # type: ignore[arg-type]
        assert mixed["variants"] == expected and len(set(expected)) == 2
        assert [p[1] for p in mixed["probabilities"]] == [
            0.1 if v == "control" else 0.9 for v in expected]
        outside = _predict(client, {"instances": [_row(None)]})
        assert outside["variant"] is None and outside["version"] == 1
    log = served.predictions.read("scorer")
    tagged = log[log["experiment"] == "ab"]
    assert len(tagged) == 50 and log["experiment"].isna().sum() == 1
    for unit, variant, version in zip(tagged["customer_id"], tagged["variant"], tagged["version"],
                                      strict=True):
        assert variant == e.variant_of(int(unit), e.started_at)  # type: ignore[arg-type]
        assert version == (1 if variant == "control" else 2)
    assert tagged["latency_ms"].notna().all()


def test_shadow_answers_from_control_and_logs_both(served: sy.Project) -> None:
    served.experiments.create("shadow", model="scorer", variants=VARIANTS, unit="customer_id",
                              mode="shadow", start=True)
    with _client(served) as client:
        _wait_routed(client, "shadow")
        answers = [_predict(client, {"instances": [_row(u)]}) for u in range(1, 31)]
        assert {(a["variant"], a["version"]) for a in answers} == {("control", 1)}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and client.get(
                "/v1/deployments", headers=BEARER).json()["deployments"][0]["queue_depth"]:
            time.sleep(0.01)
    log = served.predictions.read("scorer")
    by_variant = log.groupby("variant")["request_id"].apply(set)
    assert len(by_variant["control"]) == 30
    assert by_variant["treatment"] == by_variant["control"]  # the same requests, shadowed
    assert set(log.loc[log["variant"] == "treatment", "version"]) == {2}


@pytest.mark.parametrize("served", [True], indirect=True)
def test_canary_rolls_back_when_the_error_rate_guardrail_breaks(served: sy.Project) -> None:
    served.experiments.create("canary", model="scorer", variants=VARIANTS, unit="customer_id",
                              mode="canary", ramp=[(0.5, 0), (1.0, 3600)],
                              guardrails=[{"metric": "error_rate", "threshold": 0.1,
                                           "min_samples": 5}], start=True)
    e = served.experiments.get("canary")
    treated = [u for u in range(1, 400) if e.variant_of(u, e.started_at) == "treatment"]
    with _client(served) as client:
        _wait_routed(client, "canary")
        statuses = [client.post("/v1/models/scorer/predict",
                                json={"instances": [_row(u)]}).status_code for u in treated[:30]]
        assert statuses[:5] == [500] * 5  # the broken treatment answers 500 until the breach
        assert statuses.count(500) <= 20 and statuses[-1] == 200  # then control answers
        after = _predict(client, {"instances": [_row(treated[-1])]})
        assert after["version"] == 1 and after.get("variant") is None
        deadline = time.monotonic() + 10
        while served.experiments.get("canary").status != "rolled_back":
            assert time.monotonic() < deadline, "the rollback was not recorded"
            time.sleep(0.02)
    event = served.experiments.history("canary")[-1]
    assert event["event"] == "rollback" and "error_rate < 0.1 breached" in event["detail"]["reason"]
    decision = served.experiments.conclude("canary")
    assert decision.action == "rollback" and "error_rate" in decision.reasons[0]


def test_a_prediction_shift_breaks_the_psi_guardrail(served: sy.Project) -> None:
    served.experiments.create("shift", model="scorer", variants=VARIANTS, unit="customer_id",
                              guardrails=[{"metric": "prediction_psi", "threshold": 0.25,
                                           "min_samples": 10}], start=True)
    with _client(served) as client:
        _wait_routed(client, "shift")
        for unit in range(1, 200):
            if _predict(client, {"instances": [_row(unit)]}).get("variant") is None:
                break
        else:
            raise AssertionError("the PSI guardrail never fired")
        deadline = time.monotonic() + 10
        while served.experiments.get("shift").status != "rolled_back":
            assert time.monotonic() < deadline
            time.sleep(0.02)


class Recording(Constant):
    """A Constant that records the `amount` of every real row the treatment (p=0.9) scores."""

    seen: ClassVar[list[float]] = []

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (Constant.predict_proba(self, frame)[:, 1] > 0.5).astype(np.int64)  # not recorded

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.p == 0.9:
            Recording.seen.extend(float(a) for a in frame["amount"] if a > 0)
        return super().predict_proba(frame)


def test_a_sampled_shadow_runs_the_treatment_on_sampled_units_only(project: sy.Project) -> None:
    X = pd.DataFrame({"amount": [1.0]})
    project.models.register("scorer", Recording(0.1), signature=X, allow_pickle=True)
    project.models.register("scorer", Recording(0.9), signature=X, allow_pickle=True)
    project.models.set_alias("scorer", "champion", 1)
    served = sy.Project(project.root, project.settings.model_copy(update={
        "deployments": [DeploymentConfig(model="scorer@champion", poll_seconds=0.05)],
        "prediction_log": project.settings.prediction_log.model_copy(
            update={"flush_interval_seconds": 0.05})}))
    e = served.experiments.create("sampled", model="scorer", variants=VARIANTS, unit="customer_id",
                                  mode="shadow", shadow_sample=0.3, start=True)
    units = list(range(1, 61))
    sampled = {u for u in units if e.shadowed(u)}
    assert 0 < len(sampled) < len(units)
    Recording.seen.clear()
    with _client(served) as client:
        _wait_routed(client, "sampled")
        answers = [_predict(client, {"instances": [{"amount": float(u), "customer_id": u}]})
                   for u in units[:40]]
        mixed = _predict(client, {"instances": [{"amount": float(u), "customer_id": u}
                                                for u in units[40:]]})
        assert {(a["variant"], a["version"]) for a in answers} == {("control", 1)}
        assert mixed["variant"] == "control" and mixed["version"] == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(Recording.seen) < len(sampled):
            time.sleep(0.01)
        (d,) = client.get("/v1/deployments", headers=BEARER).json()["deployments"]
        assert d["experiment"]["shadow_sample"] == 0.3 and d["experiment"]["shadow_dropped"] == 0
    assert sorted(Recording.seen) == sorted(float(u) for u in sampled)  # each sampled row once
    log = served.predictions.read("scorer")
    treated = log[log["variant"] == "treatment"]
    assert set(treated["customer_id"].astype(int)) == sampled and len(treated) == len(sampled)
    assert len(log[log["variant"] == "control"]) == len(units)
