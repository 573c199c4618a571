"""`shipyard serve` as users run it: a real uvicorn subprocess on a free loopback port.

One fraud project (the demo's definitions, a small generated history, models registered) is
built once, and a server per online store (SQLite, Redis) runs every test; the last two end
them (kill -9 for the crash test of the prediction log, SIGTERM for the graceful shutdown).
The models: `fraud` (HistGradientBoosting on fraud_v2, alias `champion`), `swap` (two
versions, alias `live` moved under load) and `flaky` (pickled; fails, hangs or is slow on
purpose for some amounts), served as `flaky` and as `slow`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.cli.demo import build_project
from shipyard.core.time import utc_now
from shipyard.examples.fraud.generate import generate
from tests.e2e.test_feature_server import Server, _free_port, _redis_prefix, _wait

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-" + uuid.uuid4().hex  # noqa: S105 - a throwaway test secret
FLUSH_SECONDS = 0.3
ROW = {"entities": {"customer_id": 1, "merchant_id": 1}, "request": {"amount": 120.5}}
DEPLOYMENTS = """
deployments:
  - {model: fraud@champion, max_batch_size: 16, max_wait_ms: 2}
  - {model: swap@live, poll_seconds: 0.1}
  - {model: flaky/1, timeout_ms: 400}
  - {model: flaky/1, name: slow, max_batch_size: 1, max_queue: 3, timeout_ms: 5000}
"""


class Flaky:
    """A pickled test model: amount -1 raises, -2 hangs, -3 is slow; else predicts amount > 0."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        amounts = frame["amount"].to_numpy()
        if (amounts == -1).any():
            raise RuntimeError("secret internal detail")
        if (amounts == -2).any():
            time.sleep(2)
        if (amounts == -3).any():
            time.sleep(0.3)
        return (amounts > 0).astype(np.int64)


# -- the project and the servers --------------------------------------------------------------

def _features(frame: pd.DataFrame) -> list[str]:
    drop = {"customer_id", "merchant_id", "event_timestamp", "label_timestamp", "is_fraud",
            "category"}
    return [c for c in frame.columns if c not in drop]


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fraud project with its online store loaded and the test models registered."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    root = tmp_path_factory.mktemp("models") / "fraud"
    with build_project(root) as project:
        end = utc_now().replace(minute=0, second=0, microsecond=0)
        paths = generate(root / "data", customers=60, days=8, end=end)
        project.apply()
        project.features.materialize(None, utc_now())
        labels = pd.read_parquet(paths["labels"])
        train = project.features.get_historical_features(labels, feature_service="fraud_v2")
        x, y = train[_features(train)], train["is_fraud"]
        for name, iterations in (("fraud", 20), ("swap", 5), ("swap", 10)):
            model = HistGradientBoostingClassifier(max_iter=iterations, random_state=0).fit(x, y)
            project.models.register(name, model, feature_service="fraud_v2")
        project.models.set_alias("fraud", "champion", 1)
        project.models.set_alias("swap", "live", 1)
        project.models.register("flaky", Flaky(), allow_pickle=True,
                                signature=pd.DataFrame({"amount": [1.0], "n": [1]}))
    (root / "shipyard.yaml").write_text(
        f"project: fraud\n{DEPLOYMENTS}"
        f"prediction_log: {{flush_interval_seconds: {FLUSH_SECONDS}}}\n")
    return root


def _copy(project_dir: Path, target: Path, extra: str = "") -> Path:
    shutil.copytree(project_dir, target)
    if extra:
        with (target / "shipyard.yaml").open("a") as config:
            config.write(extra)
    return target


def _start(root: Path, *extra: str) -> Server:
    port = _free_port()
    log = root / "server.log"
    env = {**os.environ, "COLUMNS": "200", "SHIPYARD_SERVER__AUTH_TOKEN": TOKEN,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "serve", "-p", str(root),
         "--port", str(port), "--graceful-timeout", "10", *extra],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    return Server(f"http://127.0.0.1:{port}", process, log, root)


def _ready(server: Server) -> Server:
    _wait(server)
    deadline = time.monotonic() + 60
    while httpx.get(server.url + "/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)
    return server


@pytest.fixture(scope="module")
def servers(project_dir: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, Server]]:
    """A server per online store, started together (their start-ups overlap).

    The last tests of this file end them: the graceful shutdown the SQLite one, the crash
    test (kill -9) the Redis one; pytest runs a file's tests in order.
    """
    base = tmp_path_factory.mktemp("serve")
    prefixes = _redis_prefix()
    prefix = next(prefixes)
    redis_root = _copy(project_dir, base / "redis", f"online_store: {{type: redis, url: "
                                                    f"'{_redis_url()}', key_prefix: {prefix}}}\n")
    with sy.Project.load(redis_root) as project:
        project.features.materialize(None, utc_now())
    started = {"sqlite": _start(_copy(project_dir, base / "sqlite")),
               "redis": _start(redis_root)}
    try:
        yield {name: _ready(server) for name, server in started.items()}
    finally:
        for running in started.values():
            running.stop()
        next(prefixes, None)


@pytest.fixture(params=["sqlite", "redis"])
def server(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Server:
    """The server of the endpoint tests, on each online store."""
    return servers[request.param]


def _redis_url() -> str:
    from tests.conftest import REDIS_URL

    return REDIS_URL


def _predict(client: httpx.Client, body: Any, name: str = "fraud") -> httpx.Response:
    return client.post(f"/v1/models/{name}/predict", json=body)


def _expected(root: Path, rows: list[dict[str, Any]], ref: str = "fraud/1") -> np.ndarray:
    """Probabilities computed in this process, from the online store, for entity rows."""
    with sy.Project.load(root) as project:
        model = project.models.load(ref)
        entity_rows = [{**r["entities"], **r["request"]} for r in rows]
        columns = project.features.get_online_features(feature_service="fraud_v2",
                                                       entity_rows=entity_rows)
        columns.update(amount=[r["amount"] for r in entity_rows])
        frame = pd.DataFrame({c: pd.array(columns[c], dtype="Float64").astype(float)
                              for c in model.input_columns})
        return model.predict_proba(frame)


# -- v1: the prediction route -----------------------------------------------------------------

def test_predict_looks_features_up_and_answers_like_the_model(server: Server) -> None:
    rows = [{"entities": {"customer_id": c, "merchant_id": m}, "request": {"amount": a}}
            for c, m, a in ((1, 1, 120.5), (2, 3, 9.99), (99_999, 5, 1_000.0))]
    with server.client() as client:
        one = _predict(client, rows[0])
        many = _predict(client, rows)
    assert one.status_code == 200, one.text
    body = many.json()
    assert body["model"] == "fraud" and body["version"] == 1 and body["request_id"]
    assert many.headers["x-request-id"] == body["request_id"]
    assert len(body["predictions"]) == 3 and one.json()["predictions"] == body["predictions"][:1]
    np.testing.assert_allclose(body["probabilities"], _expected(server.root, rows), rtol=1e-9)


def test_instances_skip_the_lookup_and_give_the_same_answer(server: Server) -> None:
    with server.client() as client:
        looked_up = _predict(client, [ROW]).json()
        meta = client.get("/v2/models/fraud").json()
        names = [i["name"] for i in meta["inputs"]]
        features = client.post("/v1/features/online", json={
            "feature_service": "fraud_v2", "entities": {"customer_id": [1], "merchant_id": [1]},
            "request": {"amount": [120.5]}}).json()["results"]
        instance = {n: features[n][0] if n in features else 120.5 for n in names}
        as_object = _predict(client, {"instances": [instance]})
        as_array = _predict(client, {"instances": [[instance[n] for n in names]]})
    assert as_object.status_code == 200, as_object.text
    assert as_object.json()["probabilities"] == looked_up["probabilities"]
    assert as_array.json()["probabilities"] == looked_up["probabilities"]


@pytest.mark.parametrize(("body", "field"), [
    ({"entities": {"merchant_id": 1}, "request": {"amount": 1.0}}, "entities.customer_id"),
    ({"entities": {"customer_id": "x", "merchant_id": 1}, "request": {"amount": 1.0}},
     "entities.customer_id"),
    ([ROW, {"entities": {"customer_id": 1, "merchant_id": 1}}], "[1].request.amount"),
    ({**ROW, "request": {"amount": "lots"}}, "request.amount"),
    ({"entities": 7}, "entities"),
    ({"instances": [{"amount": 1.0}]}, "instances[0].txn_count_24h"),
    ({"instances": [[1.0, 2.0]]}, "instances[0]"),
    ([], "body"),
])
def test_bad_requests_get_422_naming_the_field(server: Server, body: Any, field: str) -> None:
    with server.client() as client:
        response = _predict(client, body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "InvalidInputError" and error["hint"]
    assert (field in error["message"]) or field == "body", error


def test_unknown_model_is_404_and_non_json_is_400(server: Server) -> None:
    with server.client() as client:
        missing = _predict(client, ROW, name="nope")
        not_json = client.post("/v1/models/fraud/predict", content=b"{oops")
    assert missing.status_code == 404 and "fraud" in missing.json()["hint"]
    assert not_json.status_code == 400


def test_a_model_failure_is_500_with_the_request_id_and_nothing_else(server: Server) -> None:
    with server.client() as client:
        failed = _predict(client, {"instances": [{"amount": -1.0, "n": 1}]}, name="flaky")
        fine = _predict(client, {"instances": [{"amount": 2.0, "n": 1}]}, name="flaky")
    assert failed.status_code == 500
    body = failed.json()
    assert body["request_id"] == failed.headers["x-request-id"]
    assert "secret" not in failed.text and "RuntimeError" not in failed.text
    assert fine.status_code == 200 and fine.json()["predictions"] == [1]
    assert body["request_id"] in server.log.read_text()


def test_a_slow_model_is_504_within_the_timeout(server: Server) -> None:
    with server.client() as client:
        started = time.monotonic()
        response = _predict(client, {"instances": [{"amount": -2.0, "n": 1}]}, name="flaky")
        elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert elapsed < 1.5


def test_overload_is_503_with_retry_after_at_once(server: Server) -> None:
    slow = {"instances": [{"amount": -3.0, "n": 1}]}  # 0.3 s each, one at a time, 3 may wait

    def call(_: int) -> tuple[int, float, str | None]:
        with server.client() as client:
            started = time.monotonic()
            response = _predict(client, slow, name="slow")
            return response.status_code, time.monotonic() - started, \
                response.headers.get("retry-after")

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(call, range(12)))
    refused = [r for r in results if r[0] == 503]
    assert refused and all(r[2] == "1" for r in refused)
    assert min(r[1] for r in refused) < 0.2  # refused at once, not after waiting
    assert {r[0] for r in results} <= {200, 503} and any(r[0] == 200 for r in results)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server: Server) -> None:
    rng = np.random.default_rng(7)
    rows = [{"entities": {"customer_id": int(c), "merchant_id": int(m)},
             "request": {"amount": float(a)}}
            for c, m, a in zip(rng.integers(0, 80, 48), rng.integers(0, 40, 48),
                               rng.uniform(1, 900, 48).round(2), strict=True)]
    before = _metric(server, "shipyard_prediction_batch_size_count", 'model="fraud"')

    def call(row: dict[str, Any]) -> list[float]:
        with server.client() as client:
            response = _predict(client, row)
            assert response.status_code == 200, response.text
            return response.json()["probabilities"][0]

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(call, rows))
    np.testing.assert_allclose(got, _expected(server.root, rows), rtol=1e-9)
    batches = _metric(server, "shipyard_prediction_batch_size_count", 'model="fraud"') - before
    assert batches < len(rows), "no two concurrent requests shared a model call"


def _metric(server: Server, name: str, labels: str = "") -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and labels in line)


def test_metrics_count_requests_by_model_version_and_status(server: Server) -> None:
    with server.client() as client:
        _predict(client, ROW)
    text = httpx.get(server.url + "/metrics").text
    for name in ("shipyard_prediction_requests_total", "shipyard_prediction_duration_seconds",
                 "shipyard_prediction_feature_fetch_seconds", "shipyard_prediction_model_call",
                 "shipyard_prediction_batch_size", "shipyard_prediction_queue_depth",
                 "shipyard_prediction_log_lag_seconds", "shipyard_prediction_log_dropped_total"):
        assert name in text, name
    assert _metric(server, "shipyard_prediction_requests_total",
                   'endpoint="v1",model="fraud",status="200",version="1"') >= 1


def test_management_routes_need_the_token(server: Server) -> None:
    with server.client() as anonymous, server.client(authorization="Bearer nope") as wrong, \
            server.client(authorization=f"Bearer {TOKEN}") as admin:
        assert anonymous.get("/v1/deployments").status_code == 401
        assert wrong.post("/v1/deployments/fraud/reload").status_code == 403
        listed = admin.get("/v1/deployments").json()["deployments"]
        reloaded = admin.post("/v1/deployments/fraud/reload").json()
        assert anonymous.get("/healthz").status_code == 200
    assert {d["name"] for d in listed} == {"fraud", "swap", "flaky", "slow"}
    assert reloaded["changed"] is False and reloaded["version"] == 1
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["checks"]["models"] == "ok"


# -- v2: the Open Inference Protocol through tritonclient -------------------------------------

def test_v2_protocol_through_tritonclient(server: Server) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("fraud") and not client.is_model_ready("nope")
    meta = client.get_model_metadata("fraud")
    assert meta["versions"] == ["1"] and meta["outputs"][0]["name"] == "prediction"
    with server.client() as http:
        reference = _predict(http, [ROW, ROW]).json()
        features = http.post("/v1/features/online", json={
            "feature_service": "fraud_v2", "entities": {"customer_id": [1], "merchant_id": [1]},
            "request": {"amount": [120.5]}}).json()["results"]
    values = {i["name"]: features.get(i["name"], [120.5])[0] for i in meta["inputs"]}
    for binary in (True, False):
        inputs = []
        for spec in meta["inputs"]:
            value = values[spec["name"]]
            kind = spec["datatype"] if value is not None else "FP64"  # null: NaN
            column = np.array([value, value] if value is not None else [np.nan] * 2,
                              dtype=np.int64 if kind == "INT64" else np.float64)
            tensor = triton.InferInput(spec["name"], [2], kind)
            tensor.set_data_from_numpy(column, binary_data=binary)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput(n, binary_data=binary)
                   for n in ("prediction", "probabilities")]
        result = client.infer("fraud", inputs, outputs=outputs)
        np.testing.assert_allclose(result.as_numpy("probabilities"), reference["probabilities"],
                                   rtol=1e-9)
        assert result.as_numpy("prediction").tolist() == reference["predictions"]
    matrix = np.array([[np.nan if values[i["name"]] is None else values[i["name"]]
                        for i in meta["inputs"]]], dtype=np.float64)
    single = triton.InferInput("input", list(matrix.shape), "FP64")
    single.set_data_from_numpy(matrix)
    result = client.infer("fraud", [single])  # no outputs named: all, as binary
    np.testing.assert_allclose(result.as_numpy("probabilities"),
                               reference["probabilities"][:1], rtol=1e-9)
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("nope", [single])
    assert unknown.value.status() == "404"
    amount = triton.InferInput("amount", [1], "FP64")
    amount.set_data_from_numpy(np.array([1.0]))
    with pytest.raises(InferenceServerException) as wrong:
        client.infer("fraud", [amount])
    assert wrong.value.status() == "422" and "missing" in wrong.value.message()


# -- hot swap, crash, shutdown ----------------------------------------------------------------

def _hammer(server: Server, stop: threading.Event, name: str, out: list[Any]) -> None:
    """Send predictions until `stop`, or until the server is gone."""
    with server.client() as client:
        while not stop.is_set():
            try:
                response = _predict(client, ROW, name=name)
            except httpx.TransportError:
                return
            out.append((time.time(), response.status_code,
                        response.json().get("version"), response.json().get("request_id")))


def _load(server: Server, name: str, seconds: float, *, during: Any = None,
          clients: int = 4) -> list[Any]:
    stop, results = threading.Event(), []  # type: ignore[var-annotated]
    threads = [threading.Thread(target=_hammer, args=(server, stop, name, results))
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 2)
    if during is not None:
        during()
    time.sleep(seconds / 2)
    stop.set()
    for thread in threads:
        thread.join()
    return results


def test_hot_swap_under_load_fails_no_request(servers: dict[str, Server]) -> None:
    server = servers["sqlite"]

    def move_alias() -> None:
        with sy.Project.load(server.root) as project:
            project.models.set_alias("swap", "live", 2)

    results = _load(server, "swap", 2.0, during=move_alias)
    log = server.log.read_text()
    assert results and {status for _, status, _, _ in results} == {200}, log
    versions = [v for _, _, v, _ in sorted(results)]
    assert versions[0] == 1 and set(versions) == {1, 2}
    assert versions[-20:] == [2] * 20, "requests went back to the old version"


def test_a_crash_loses_no_prediction_older_than_the_flush_interval(
        servers: dict[str, Server]) -> None:
    server = servers["redis"]
    killed_at: list[float] = []

    def kill() -> None:
        killed_at.append(time.time())
        os.kill(server.process.pid, signal.SIGKILL)

    results = _load(server, "fraud", 2.0, during=kill)  # the second half hits a dead server
    server.process.wait()
    acked = {rid: at for at, status, _, rid in results if status == 200}
    assert len(acked) > 20
    with sy.Project.load(server.root) as project:
        logged = project.predictions.read("fraud")
    old_enough = {rid for rid, at in acked.items() if at < killed_at[0] - FLUSH_SECONDS}
    assert old_enough and old_enough <= set(logged["request_id"])
    mine = logged[logged["request_id"].isin(acked)]
    assert (mine["version"] == 1).all() and mine["amount"].eq(120.5).all()
    assert mine["customer_id"].eq(1).all() and mine["probabilities"].map(len).eq(2).all()


def test_graceful_shutdown_finishes_requests_and_flushes_the_log(
        servers: dict[str, Server]) -> None:
    server = servers["sqlite"]
    slow = {"instances": [{"amount": -3.0, "n": 1}]}
    answers: list[httpx.Response] = []

    def call() -> None:
        with server.client() as client:
            answers.append(_predict(client, slow, name="slow"))

    callers = [threading.Thread(target=call) for _ in range(3)]
    for caller in callers:
        caller.start()
    deadline = time.monotonic() + 20
    with server.client(authorization=f"Bearer {TOKEN}") as admin:
        while True:  # wait until the requests are in: one in the model, two queued
            listed = admin.get("/v1/deployments").json()["deployments"]
            if next(d for d in listed if d["name"] == "slow")["queue_depth"] == 2:
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.01)
    log = server.stop()
    for caller in callers:
        caller.join()
    assert server.process.returncode in (0, -signal.SIGTERM), log
    assert "Finished server process" in log
    assert [a.status_code for a in answers] == [200, 200, 200]
    with sy.Project.load(server.root) as project:
        logged = project.predictions.read("flaky")
    assert {a.json()["request_id"] for a in answers} <= set(logged["request_id"])
