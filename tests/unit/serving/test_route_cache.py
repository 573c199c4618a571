"""Templated JSON routes are matched once per path: later requests reuse the match."""

from __future__ import annotations

import warnings
from typing import Any

from starlette.routing import Router

import shipyard as sy
from shipyard.serving import JsonCall, JsonRoute, ServerState, create_app
from shipyard.serving import asgi as asgi_module

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _routes(state: ServerState) -> Router:
    async def echo(call: JsonCall) -> Any:
        keys = sorted(call.path_params)
        call.path_params["seen"] = True  # a handler that mutates its params must not leak
        return {"name": call.path_params["name"], "keys": keys}

    return Router([JsonRoute("/v1/things/{name}/echo", echo, methods=["POST"])])


def test_cached_matches_give_each_request_its_own_params(project: sy.Project,
                                                         monkeypatch: Any) -> None:
    monkeypatch.setattr(asgi_module, "_MATCH_CACHE", 3)
    app = create_app(project, routes=[_routes])
    with TestClient(app) as client:
        for _ in range(2):
            for name in ("a", "b", "c", "d", "e"):  # more paths than the cache holds
                answer = client.post(f"/v1/things/{name}/echo", json={})
                assert answer.json() == {"name": name, "keys": ["name"]}
        assert client.get("/v1/things/a/echo").status_code == 405  # method still checked
        assert client.post("/v1/things/a/other", json={}).status_code == 404
    assert 0 < len(app._matched) <= 3
