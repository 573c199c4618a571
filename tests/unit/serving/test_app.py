"""The app's extension API, as the model server uses it: routers, access, hooks, readiness."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytest
from fastapi import APIRouter
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router

import shipyard as sy
from shipyard.serving import JsonCall, JsonResponse, JsonRoute, ServerState, create_app
from tests.unit.serving.conftest import TOKEN

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BEARER = {"authorization": f"Bearer {TOKEN}"}


class Predict(BaseModel):
    inputs: list[float]


def model_routes(state: ServerState) -> APIRouter:
    """What a model server adds: a fast predict route, management routes, hooks, a check."""
    events: list[str] = state.extras.setdefault("events", [])
    state.extras["ready"] = True

    @state.on_startup
    async def load_models() -> None:
        events.append("startup")

    @state.on_shutdown
    async def unload_models() -> None:
        events.append("shutdown")

    state.add_readiness_check("models", lambda: state.extras["ready"])

    async def predict(call: JsonCall) -> Any:
        if call.body.get("fail"):
            raise RuntimeError("secret internal detail")
        if call.body.get("accepted"):
            return JsonResponse({"queued": True}, 202, {"x-extra": "1"})
        return {"model": call.path_params["name"], "outputs": [sum(call.body["inputs"])]}

    router = APIRouter()
    router.routes.append(JsonRoute("/v1/models/{name}/predict", predict, summary="Predict",
                                   request_model=Predict, tags=["models"]))

    @router.post("/v1/models/{name}/aliases", dependencies=[state.requires("write")])
    async def set_alias(name: str, body: Predict) -> dict[str, Any]:
        return {"name": name, "n": len(body.inputs)}

    @router.get("/v1/models/{name}/crash")
    async def crash(name: str) -> None:
        raise RuntimeError("another secret detail")

    @router.post("/v1/models/{name}/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    return router


def plain_routes(state: ServerState) -> Router:
    async def version(request: Request) -> PlainTextResponse:
        return PlainTextResponse("v1")

    return Router([Route("/version", version),
                   JsonRoute("/v1/admin/reload", _ok, access="write", methods=["POST"])])


async def _ok(call: JsonCall) -> Any:
    return {"ok": True}


@pytest.fixture
def app(project: sy.Project) -> Any:
    return create_app(project, routes=[model_routes, plain_routes], max_body_bytes=1_000)


def test_json_route_with_path_params_and_hooks(app: Any) -> None:
    with TestClient(app) as client:
        assert app.state.extras["events"] == ["startup"]
        response = client.post("/v1/models/fraud/predict", json={"inputs": [1.0, 2.5]})
        assert response.status_code == 200
        assert response.json() == {"model": "fraud", "outputs": [3.5]}
        accepted = client.post("/v1/models/fraud/predict", json={"inputs": [], "accepted": 1})
        assert accepted.status_code == 202 and accepted.headers["x-extra"] == "1"
        assert client.get("/version").text == "v1"
    assert app.state.extras["events"] == ["startup", "shutdown"]


def test_management_routes_need_the_token(app: Any) -> None:
    with TestClient(app) as client:
        body = {"inputs": [1.0]}
        for path in ("/v1/models/m/aliases", "/v1/admin/reload"):
            missing = client.post(path, json=body)
            assert missing.status_code == 401, missing.text
            assert missing.json()["error"] == "UnauthorizedError"
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = client.post(path, json=body, headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 403 and wrong.json()["error"] == "ForbiddenError"
            assert client.post(path, json=body, headers=BEARER).status_code == 200
        # read routes stay open without auth_reads
        assert client.post("/v1/models/m/predict", json=body).status_code == 200


def test_fastapi_validation_errors_use_the_error_body(app: Any) -> None:
    with TestClient(app) as client:
        response = client.post("/v1/models/m/aliases", json={"inputs": "x"}, headers=BEARER)
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "InvalidInputError" and "'inputs'" in body["message"]
        assert client.post("/v1/models/m/raw", content=b"x" * 2_000).status_code == 413
        assert client.post("/v1/models/m/predict", content=b"x" * 2_000).status_code == 413
        assert client.get("/v1/models/m/predict").status_code == 405


def test_readiness_checks(app: Any) -> None:
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {"ready": True, "checks": {
            "online_store": "ok", "models": "ok"}}
        app.state.extras["ready"] = False
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"online_store": "ok", "models": "failed"}

        async def raising() -> None:
            raise sy.BackendUnavailable("model store down", hint="start it")

        app.state.add_readiness_check("store", raising)
        assert client.get("/readyz").json()["checks"]["store"] == (
            "BackendUnavailable: model store down")


def test_unexpected_errors_are_500_with_a_request_id_in_body_and_log(
        app: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with TestClient(app, raise_server_exceptions=False) as client:
        for response in (client.post("/v1/models/m/predict", json={"fail": True}),
                         client.get("/v1/models/m/crash")):
            assert response.status_code == 500
            body = response.json()
            assert body["error"] == "InternalError"
            assert body["request_id"] == response.headers["x-request-id"]
            assert "secret" not in response.text and "RuntimeError" not in response.text
            assert body["request_id"] in caplog.text
    assert "secret internal detail" in caplog.text and "another secret detail" in caplog.text


def test_the_token_never_reaches_logs_or_bodies(app: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    near = TOKEN[:-1] + "X"
    with TestClient(app, raise_server_exceptions=False) as client:
        bodies = [client.post("/v1/push", json={"push_source_name": "stats_push", "rows": []},
                              headers={"authorization": f"Bearer {t}"}).text
                  for t in (TOKEN, near, "")]
        bodies.append(client.post("/v1/models/m/predict", json={"fail": 1},
                                  headers=BEARER).text)
        bodies.append(client.get("/readyz").text)
        bodies.append(client.get("/openapi.json").text)
        bodies.append(client.get("/metrics").text)
    text = caplog.text + "".join(bodies) + repr(app.state)
    assert TOKEN not in text and near not in text


def test_openapi_documents_extension_routes(app: Any) -> None:
    with TestClient(app) as client:
        doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    assert "/v1/models/{name}/predict" in paths and "/v1/models/{name}/aliases" in paths
    predict = paths["/v1/models/{name}/predict"]["post"]
    assert predict["parameters"][0]["name"] == "name"
    assert predict["summary"] == "Predict" and "security" not in predict
    assert paths["/v1/admin/reload"]["post"]["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_a_factory_must_return_a_router(project: sy.Project) -> None:
    with pytest.raises(TypeError, match="not an APIRouter or a Router"):
        create_app(project, routes=[lambda state: object()])  # type: ignore[list-item]


def test_json_route_checks_its_access_kind() -> None:
    with pytest.raises(ValueError, match="access must be one of"):
        JsonRoute("/x", _ok, access="admin")  # type: ignore[arg-type]
