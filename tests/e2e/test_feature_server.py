"""`shipyard serve-features` as users run it: a real uvicorn subprocess on a loopback port.

Three servers per module (started once each): SQLite online store with a token for writes;
Redis with a token for reads too; Redis pointed at a closed port (not ready).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import shipyard as sy
from tests.conftest import REDIS_URL, server_missing
from tests.contract._online import DEFINITIONS, NOW, H, stats_frame, write_sources

TOKEN = "tok-" + uuid.uuid4().hex  # noqa: S105 - a throwaway test secret
WRONG = "wrong-" + uuid.uuid4().hex
MAX_BODY_MB = 0.05  # 52,428 bytes: the 413 test sends more
# An on-demand view that fails on purpose for a negative amount.
EXTRA = """
@sy.on_demand_feature_view(sources=[txn], schema=[sy.Field("checked", sy.Float64)],
                           mode="python")
def boom(inputs):
    if any(a < 0 for a in inputs["amount"]):
        raise RuntimeError("internal detail that must not reach the client")
    return {"checked": inputs["amount"]}
"""


@dataclass
class Server:
    """A running feature server: its URL, process and log files."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    root: Path

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> str:
        """SIGTERM, wait for the graceful exit, return the server's whole log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _project(root: Path, online: str, server: str) -> Path:
    root.mkdir(parents=True)
    (root / "shipyard.yaml").write_text(
        f"project: served\nmetadata: sqlite:///{root / 'meta.db'}\n{online}{server}")
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS) + textwrap.dedent(EXTRA))
    write_sources(root)
    stats_frame([(1, NOW - H, 1.0), (2, NOW - H, 2.5)]).to_parquet(root / "stats.parquet")
    with sy.Project.load(root) as project:
        project.apply()
        project.features.materialize(None, NOW)
    return root


def _start(root: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    port = _free_port()
    log = root / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "serve-features", "-p", str(root),
         "--port", str(port), "--max-body-mb", str(MAX_BODY_MB), *extra],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200", **(env or {})})
    return Server(f"http://127.0.0.1:{port}", process, log, root)


def _wait(server: Server) -> Server:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n"
                        f"{server.log.read_text()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"the server did not answer within 120 s:\n{server.log.read_text()}")


def _redis_prefix() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        server_missing("Redis", exc)
    prefix = f"t_{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """All three servers, started together (their start-ups overlap), stopped at the end."""
    base = tmp_path_factory.mktemp("served")
    prefixes = _redis_prefix()
    prefix = next(prefixes)
    redis_line = f"online_store: {{type: redis, url: '{REDIS_URL}', key_prefix: {prefix}}}\n"
    closed = f"redis://127.0.0.1:{_free_port()}/0"
    started = {
        "sqlite": _start(_project(base / "sqlite", f"online_store: {{type: sqlite, path: "
                                  f"'{base / 'online.db'}'}}\n", ""),
                         env={"SHIPYARD_SERVER__AUTH_TOKEN": TOKEN}),
        "redis": _start(_project(base / "redis", redis_line,
                                 f"server: {{auth_token: {TOKEN}, auth_reads: true}}\n"),
                        "--workers", "2"),
    }
    down_root = base / "down"
    down_root.mkdir()
    (down_root / "shipyard.yaml").write_text(
        f"project: served\nmetadata: sqlite:///{base / 'sqlite' / 'meta.db'}\n"
        f"online_store: {{type: redis, url: '{closed}'}}\n")
    (down_root / "definitions.py").write_text("")
    started["down"] = _start(down_root)
    try:
        yield {name: _wait(server) for name, server in started.items()}
    finally:
        for server in started.values():
            server.stop()
        next(prefixes, None)


@pytest.fixture(params=["sqlite", "redis"])
def server(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Server:
    """The SQLite and the Redis server in turn."""
    return servers[request.param]


def _auth(server: Server) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def _read(client: httpx.Client, body: Any) -> httpx.Response:
    return client.post("/v1/features/online", json=body)


def _assert_error(response: httpx.Response, status: int, error: str, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error and body["hint"], body
    for fragment in fragments:
        assert fragment in body["message"], body


def test_reads_features_as_columns_with_request_data(server: Server) -> None:
    with server.client(**_auth(server)) as client:
        response = _read(client, {"features": ["stats:value", "stats:name", "py_ratio:ratio"],
                                  "entities": {"customer_id": [2, 1, 99]},
                                  "request": {"amount": [5.0, 3.0, 1.0]}})
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"]
        assert response.json() == {
            "metadata": {"join_keys": ["customer_id"],
                         "feature_names": ["value", "name", "ratio"]},
            "results": {"customer_id": [2, 1, 99], "value": [2.5, 1.0, None],
                        "name": ["v2.5", "v1", None], "ratio": [2.0, 3.0, None]}}
        service = _read(client, {"feature_service": "svc", "full_feature_names": True,
                                 "entities": {"customer_id": [1], "shop_code": ["a"],
                                              "amount": [2.0]}})
        assert service.status_code == 200, service.text
        assert service.json()["results"] == {
            "customer_id": [1], "shop_code": ["a"], "stats__value": [1.0],
            "stats__name": ["v1"], "py_ratio__ratio": [2.0], "pairs__pair_value": [7]}


def test_push_then_read_shows_the_new_value(server: Server) -> None:
    row = {"customer_id": 7, "event_timestamp": NOW.isoformat(), "value": 42.5, "count": 42,
           "name": "pushed", "flag": True, "tags": [1, 2], "scores": [0.5], "seen": None,
           "small": 3, "single": 1.5}
    with server.client(**_auth(server)) as client:
        before = _read(client, {"features": ["stats:value"], "entities": {"customer_id": [7]}})
        assert before.json()["results"]["value"] == [None]
        pushed = client.post("/v1/push", json={"push_source_name": "stats_push", "rows": [row]})
        assert pushed.status_code == 200, pushed.text
        assert pushed.json() == {"push_source_name": "stats_push", "rows": 1}
        after = _read(client, {"features": ["stats:value", "stats:tags", "stats:name"],
                               "entities": {"customer_id": [7]}})
        assert after.json()["results"] == {"customer_id": [7], "value": [42.5],
                                           "tags": [[1, 2]], "name": ["pushed"]}
        older = {**row, "event_timestamp": (NOW - 10 * H).isoformat(), "value": 1.0}
        columns = {k: [v] for k, v in older.items()}  # the columns form; older: not applied
        assert client.post("/v1/push", json={"push_source_name": "stats_push",
                                             "columns": columns}).status_code == 200
        again = _read(client, {"features": ["stats:value"], "entities": {"customer_id": [7]}})
        assert again.json()["results"]["value"] == [42.5]


BAD_READS: list[tuple[Any, int, str, str]] = [
    ([1, 2], 422, "InvalidInputError", "not a JSON object"),
    ({"entities": {"customer_id": [1]}}, 422, "InvalidInputError", "'features'"),
    ({"features": "stats:value", "entities": {"customer_id": [1]}}, 422, "InvalidInputError",
     "'features'"),
    ({"features": [1], "entities": {"customer_id": [1]}}, 422, "InvalidInputError",
     "'features[0]'"),
    ({"features": ["stats:value"]}, 422, "InvalidInputError", "'entities'"),
    ({"features": ["stats:value"], "entities": [1]}, 422, "InvalidInputError", "'entities'"),
    ({"features": ["stats:value"], "entities": {"customer_id": 1}}, 422, "InvalidInputError",
     "'entities.customer_id'"),
    ({"features": ["stats:value"], "entities": {"customer_id": ["1"]}}, 422,
     "InvalidInputError", "'entities.customer_id[0]'"),
    ({"features": ["stats:value"], "entities": {"customer_id": [1, {"a": 1}]}}, 422,
     "InvalidInputError", "'entities.customer_id[1]'"),
    ({"features": ["stats:value"], "entities": {"customer_id": [True]}}, 422,
     "InvalidInputError", "'entities.customer_id[0]'"),
    ({"features": ["stats:value"], "entities": {"custid": [1]}}, 422, "InvalidInputError",
     "'entities.customer_id'"),
    ({"features": ["stats:value"], "entities": {"customer_id": [1, 2]},
      "request": {"amount": [1.0]}}, 422, "InvalidInputError", "'request.amount'"),
    ({"features": ["py_ratio:ratio"], "entities": {"customer_id": [1]}}, 422,
     "InvalidInputError", "'request.amount'"),
    ({"features": ["py_ratio:ratio"], "entities": {"customer_id": [1]},
      "request": {"amount": ["x"]}}, 422, "InvalidInputError", "'request.amount[0]'"),
    ({"features": ["stats:value"], "entities": {"customer_id": [1]},
      "full_feature_names": "yes"}, 422, "InvalidInputError", "'full_feature_names'"),
    ({"features": ["stats:value"], "feature_service": "svc",
      "entities": {"customer_id": [1]}}, 422, "InvalidInputError", "both"),
    ({"features": ["nope:value"], "entities": {"customer_id": [1]}}, 404, "NotFoundError",
     "'nope'"),
    ({"features": ["stats:nope"], "entities": {"customer_id": [1]}}, 404, "NotFoundError",
     "'nope'"),
    ({"feature_service": "nope", "entities": {"customer_id": [1]}}, 404, "NotFoundError",
     "'nope'"),
    ({"features": ["archive:old"], "entities": {"customer_id": [1]}}, 422,
     "InvalidInputError", "'archive'"),
]


@pytest.mark.parametrize(("body", "status", "error", "fragment"), BAD_READS)
def test_bad_reads_get_a_4xx_naming_the_field(servers: dict[str, Server], body: Any,
                                              status: int, error: str, fragment: str) -> None:
    with servers["sqlite"].client() as client:
        _assert_error(_read(client, body), status, error, fragment)


def test_malformed_bodies_routes_and_methods(servers: dict[str, Server]) -> None:
    with servers["sqlite"].client(**_auth(servers["sqlite"])) as client:
        for raw in (b"{", b"", b"\xff\xfe", b'{"features": [}', b"nan"):
            response = client.post("/v1/features/online", content=raw,
                                   headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (raw, response.text)
            assert response.json()["error"] in ("BadRequestError", "InvalidInputError")
        _assert_error(client.post("/v1/features/online", content=b"{"), 400, "BadRequestError",
                      "not valid JSON")
        _assert_error(client.post("/v1/push", content=b"[1,"), 400, "BadRequestError")
        _assert_error(client.get("/v1/nothing"), 404, "RouteNotFoundError", "/v1/nothing")
        _assert_error(client.get("/v1/features/online"), 405, "RouteNotFoundError", "GET")
        big = {"features": ["stats:value"], "entities": {"customer_id": list(range(20_000))}}
        _assert_error(client.post("/v1/features/online", json=big), 413,
                      "PayloadTooLargeError", "52,428 bytes")
        _assert_error(client.post("/v1/push", json={"push_source_name": "x",
                                                    "rows": [{"a": "b" * 60_000}]}),
                      413, "PayloadTooLargeError")


BAD_PUSHES: list[tuple[Any, int, str]] = [
    ({"rows": []}, 422, "'push_source_name'"),
    ({"push_source_name": 3, "rows": []}, 422, "'push_source_name'"),
    ({"push_source_name": "nope", "rows": [{"customer_id": 1}]}, 404, "'nope'"),
    ({"push_source_name": "stats_push"}, 422, "'rows'"),
    ({"push_source_name": "stats_push", "rows": {"a": 1}}, 422, "'rows'"),
    ({"push_source_name": "stats_push", "rows": [1]}, 422, "'rows[0]'"),
    ({"push_source_name": "stats_push", "columns": {"customer_id": 1}}, 422,
     "'columns.customer_id'"),
    ({"push_source_name": "stats_push", "columns": {"customer_id": [1], "value": [1.0, 2.0]}},
     422, "'columns.value'"),
    ({"push_source_name": "stats_push", "rows": [{"customer_id": 1}]}, 422, "event_timestamp"),
    ({"push_source_name": "stats_push",
      "rows": [{"customer_id": 1, "event_timestamp": "yesterday"}]}, 422,
     "'rows[0].event_timestamp'"),
    ({"push_source_name": "stats_push",
      "rows": [{"customer_id": 1, "event_timestamp": 1.0, "value": 1.0},
               {"customer_id": "x", "event_timestamp": 2.0, "value": 1.0}]}, 422,
     "'rows[*].customer_id'"),
    ({"push_source_name": "stats_push",
      "rows": [{"customer_id": 1, "event_timestamp": 1.0, "value": "high", "count": 1,
                "name": "a", "flag": True, "tags": [], "scores": [], "seen": None,
                "small": 1, "single": 1.0}]}, 422, "'value'"),
]


@pytest.mark.parametrize(("body", "status", "fragment"), BAD_PUSHES)
def test_bad_pushes_get_a_4xx_naming_the_field(servers: dict[str, Server], body: Any,
                                               status: int, fragment: str) -> None:
    with servers["sqlite"].client(**_auth(servers["sqlite"])) as client:
        response = client.post("/v1/push", json=body)
        assert response.status_code == status, response.text
        assert fragment in response.json()["message"], response.text


def test_failing_transform_is_a_4xx_and_request_ids_are_echoed(servers: dict[str, Server]
                                                                ) -> None:
    """A transformation that raises is reported as bad input (never a 500); the in-process
    tests cover the 500 path (tests/unit/serving)."""
    with servers["sqlite"].client() as client:
        response = _read(client, {"features": ["boom:checked"],
                                  "entities": {"customer_id": [1]},
                                  "request": {"amount": [-1.0]}})
        _assert_error(response, 422, "InvalidInputError", "'boom' failed")
        ok = _read(client, {"features": ["boom:checked"], "entities": {"customer_id": [1]},
                            "request": {"amount": [2.0]}})
        assert ok.json()["results"]["checked"] == [2.0]
        given = client.post("/v1/features/online", headers={"x-request-id": "trace-123"},
                            json={"features": ["stats:value"], "entities": {"customer_id": [1]}})
        assert given.headers["x-request-id"] == "trace-123"
        odd = client.post("/v1/features/online", headers={"x-request-id": "bad id!"},
                          json={"features": ["stats:value"], "entities": {"customer_id": [1]}})
        assert odd.headers["x-request-id"] != "bad id" and len(odd.headers["x-request-id"]) == 16


def test_write_routes_need_the_token(servers: dict[str, Server]) -> None:
    push = {"push_source_name": "stats_push", "rows": []}
    with servers["sqlite"].client() as client:
        missing = client.post("/v1/push", json=push)
        _assert_error(missing, 401, "UnauthorizedError", "needs a bearer token")
        assert missing.headers["www-authenticate"] == "Bearer"
        for header in (f"Bearer {WRONG}", f"Basic {TOKEN}", "Bearer", TOKEN):
            response = client.post("/v1/push", json=push, headers={"authorization": header})
            assert response.status_code in (401, 403), (header, response.text)
            assert TOKEN not in response.text and WRONG not in response.text
        _assert_error(client.post("/v1/push", json=push,
                                  headers={"authorization": f"Bearer {WRONG}"}),
                      403, "ForbiddenError")
        ok = client.post("/v1/push", json=push, headers={"authorization": f"bearer {TOKEN}"})
        assert ok.status_code == 200, ok.text
        # reads are open on this server (auth_reads is false)
        assert _read(client, {"features": ["stats:value"],
                              "entities": {"customer_id": [1]}}).status_code == 200


def test_auth_reads_extends_the_token_to_reads(servers: dict[str, Server]) -> None:
    body = {"features": ["stats:value"], "entities": {"customer_id": [1]}}
    with servers["redis"].client() as client:
        _assert_error(_read(client, body), 401, "UnauthorizedError")
        _assert_error(client.post("/v1/features/online", json=body,
                                  headers={"authorization": f"Bearer {WRONG}"}),
                      403, "ForbiddenError")
        assert client.post("/v1/features/online", json=body,
                           headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200, path


def test_health_and_readiness(servers: dict[str, Server]) -> None:
    for name in ("sqlite", "redis"):
        with servers[name].client() as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            ready = client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"ready": True, "checks": {"online_store": "ok"}}
    with servers["down"].client() as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False
        assert body["checks"]["online_store"].startswith("BackendUnavailable")
        read = _read(client, {"features": ["stats:value"], "entities": {"customer_id": [1]}})
        assert read.status_code == 503 and read.json()["error"] == "BackendUnavailable"


def test_metrics_count_requests_by_route_and_status(servers: dict[str, Server]) -> None:
    with servers["sqlite"].client() as client:
        _read(client, {"features": ["stats:value"], "entities": {"customer_id": [1]}})
        _read(client, {"features": ["stats:value"], "entities": {"customer_id": ["x"]}})
        client.get("/no/such/route")
        text = client.get("/metrics").text
    assert ('shipyard_http_requests_total{method="POST",route="/v1/features/online",'
            'status="200"}') in text
    assert ('shipyard_http_requests_total{method="POST",route="/v1/features/online",'
            'status="422"}') in text
    assert 'route="<unmatched>",status="404"' in text
    assert ('shipyard_http_request_duration_seconds_bucket{le="0.001",method="POST",'
            'route="/v1/features/online"}') in text
    assert "shipyard_online_feature_entities_total" in text
    with servers["redis"].client() as client:  # two workers: one sum over both
        for _ in range(6):
            client.get("/healthz")
        text = client.get("/metrics").text
    line = next(x for x in text.splitlines()
                if x.startswith('shipyard_http_requests_total{method="GET",route="/healthz"'))
    assert float(line.rsplit(" ", 1)[1]) >= 6


def test_openapi_documents_the_routes(servers: dict[str, Server]) -> None:
    with servers["sqlite"].client() as client:
        doc = client.get("/openapi.json").json()
    assert {"/v1/features/online", "/v1/push", "/healthz", "/readyz"} <= set(doc["paths"])
    online = doc["paths"]["/v1/features/online"]["post"]
    assert "requestBody" in online and "422" in online["responses"]
    assert doc["paths"]["/v1/push"]["post"]["security"] == [{"bearer": []}]


def test_http_details_head_and_expect_100_continue(servers: dict[str, Server]) -> None:
    """The server writes each response head with its body (http_protocol.py): HEAD responses
    and the interim 100 Continue must still go out on time."""
    server = servers["sqlite"]
    with server.client() as client:
        head = client.head("/healthz")
        assert head.status_code == 200 and head.content == b""
        assert client.get("/healthz").json() == {"status": "ok"}  # same connection, after HEAD
    body = json.dumps({"features": ["stats:value"], "entities": {"customer_id": [1]}}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /v1/features/online HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        assert conn.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(body)
        response = b""
        while not response.endswith(b"}}"):
            chunk = conn.recv(65536)
            assert chunk, response
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 OK") and b'"value":[1.0]' in response


def test_graceful_stop_and_no_token_in_logs(servers: dict[str, Server]) -> None:
    """Last in the module: stops the servers and reads their whole logs."""
    for name, server in servers.items():
        log = server.stop()
        assert server.process.returncode in (0, -15), log  # uvicorn re-raises SIGTERM
        assert "Application shutdown complete" in log, log
        assert TOKEN not in log and WRONG not in log, name
