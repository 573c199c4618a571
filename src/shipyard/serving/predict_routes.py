"""Prediction routes: `POST /v1/models/{name}/predict`, and the deployments' management API.

Errors: an unknown model 404; a malformed body, a missing entity key or a wrong type 422
naming the field; a full queue 503 with Retry-After, at once; a slow model 504; a model
failure 500 with the request id and nothing else. Management routes need the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, RootModel
from starlette.routing import Router

from shipyard.core.errors import ShipyardError
from shipyard.features.online_read import now_us
from shipyard.serving.deployments import Deployment
from shipyard.serving.experiment_routing import Route, routed_predict
from shipyard.serving.inference import ItemResult, LoadedModel, ModelFailedError, PredictItem
from shipyard.serving.model_server import ModelServer, model_server
from shipyard.serving.predict_inputs import predict_item
from shipyard.serving.routes import JsonCall, JsonResponse, JsonRoute
from shipyard.serving.state import ServerState

ENDPOINT = "v1"


class PredictRow(BaseModel):
    """One row: join keys, and the request data on-demand features need."""

    entities: dict[str, int | str] = Field(examples=[{"customer_id": 42, "merchant_id": 7}])
    request: dict[str, Any] | None = Field(None, examples=[{"amount": 120.5}])


class PredictInstances(BaseModel):
    """Complete feature rows (no feature lookup): objects, or arrays in signature order."""

    instances: list[dict[str, Any] | list[Any]]


class PredictRequest(RootModel[PredictRow | list[PredictRow] | PredictInstances]):
    """One row, a list of rows, or complete feature rows."""


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[list[float]] | None = None
    model: str
    version: int
    request_id: str
    experiment: str | None = None  # the experiment routing this model, if the unit is in it
    variant: str | None = None  # the variant that answered (null: several, see `variants`)
    variants: list[str | None] | None = None  # per row, when rows fell into several variants
    versions: list[int] | None = None


def error_response(exc: ShipyardError, request_id: str) -> JsonResponse:
    """A ShipyardError as its JSON body; Retry-After on 503, the request id on 500."""
    body: dict[str, Any] = exc.to_dict()
    headers = {}
    retry = getattr(exc, "retry_after_seconds", None)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    if isinstance(exc, ModelFailedError):
        body["request_id"] = request_id
    return JsonResponse(body, exc.http_status, headers)


async def counted_predict(server: ModelServer, deployment: Deployment, endpoint: str,
                          make_item: Callable[[LoadedModel], PredictItem]) -> ItemResult:
    """Check and predict one request, counting it by model, version, endpoint and status."""
    started = time.perf_counter()
    version, status = 0, 500
    try:
        loaded = deployment.loaded()
        version = loaded.version
        item = make_item(loaded)
        result = await deployment.predict(item)
        version, status = result.version, 200
        server.metrics.count_rows(deployment.name, version, item.size)
        return result
    except ShipyardError as exc:
        status = exc.http_status
        raise
    finally:
        server.metrics.observe_request(deployment.name, version, endpoint, status,
                                       time.perf_counter() - started)


def _variant_predict(server: ModelServer, deployment: Deployment, route: Route,
                     call: JsonCall) -> Callable[..., Any]:
    """Predict part of a request on a variant's version (the shadow batcher for shadows)."""
    name, unit = route.experiment.name, route.experiment.unit

    async def run(body: Any, model: LoadedModel | None, variant: str | None,
                  shadow: bool = False) -> ItemResult:
        def make_item(loaded: LoadedModel) -> PredictItem:
            use = model or loaded
            lookup = not (isinstance(body, dict) and "instances" in body)
            key_kinds, fields = server.plan_inputs(use) if lookup else (None, ())
            item = predict_item(body, use, key_kinds, fields, request_id=call.request_id,
                                arrived_us=now_us())
            item.model, item.variant = model, variant
            item.experiment = name if variant is not None else None
            if item.instances is not None and unit not in item.instances:  # log the unit too
                item.instances = {**item.instances, unit: [
                    row.get(unit) if isinstance(row, dict) else None for row in body["instances"]]}
            return item

        if not shadow:
            return await counted_predict(server, deployment, ENDPOINT, make_item)
        batcher = deployment.shadow_batcher
        assert batcher is not None  # checked by the caller
        async with asyncio.timeout(deployment.config.timeout_ms / 1000):
            return await batcher.submit(make_item(deployment.loaded()))

    return run


def predict_routes(state: ServerState) -> Router:
    """The v1 prediction route and the management routes of the app's deployments."""
    server = model_server(state)
    deployments = server.deployments

    async def predict(call: JsonCall) -> Any:
        """Predict for entity rows (features looked up) or complete `instances`."""
        deployment = deployments.get(call.path_params["name"])
        body = call.body

        def make_item(loaded: LoadedModel) -> PredictItem:
            lookup = not (isinstance(body, dict) and "instances" in body)
            key_kinds, fields = server.plan_inputs(loaded) if lookup else (None, ())
            return predict_item(body, loaded, key_kinds, fields, request_id=call.request_id,
                                arrived_us=now_us())

        route = deployment.route
        try:
            if route is not None:
                answer = await routed_predict(deployment, route, body,
                                              _variant_predict(server, deployment, route, call),
                                              server.on_rollback)
                answer["request_id"] = call.request_id
                return answer
            result = await counted_predict(server, deployment, ENDPOINT, make_item)
        except ShipyardError as exc:
            return error_response(exc, call.request_id)
        return {"predictions": result.predictions, "probabilities": result.probabilities,
                "model": deployment.ref.name, "version": result.version,
                "request_id": call.request_id}

    async def list_deployments(call: JsonCall) -> Any:
        """Every deployment: its reference, the version it serves, its settings."""
        return {"deployments": [d.describe() for d in deployments]}

    async def reload(call: JsonCall) -> Any:
        """Re-resolve a deployment's reference now and load the version it points at."""
        deployment = deployments.get(call.path_params["name"])
        changed = await deployment.refresh()
        return {"changed": changed, **deployment.describe()}

    return Router([
        JsonRoute("/v1/models/{name}/predict", predict, tags=["models"], access="read",
                  summary="Predict", request_model=PredictRequest,
                  response_model=PredictResponse),
        JsonRoute("/v1/deployments", list_deployments, methods=["GET"], access="write",
                  tags=["management"], summary="List deployments"),
        JsonRoute("/v1/deployments/{name}/reload", reload, access="write",
                  tags=["management"], summary="Reload a deployment"),
    ])
