"""The Open Inference Protocol (KServe v2): health, server and model metadata, and infer.

`POST /v2/models/{name}/infer` takes complete feature rows as named tensors (one 1-D tensor
per signature column, or one [rows, columns] numeric tensor) and answers `prediction` and,
for classifiers, `probabilities`; JSON or binary tensors both ways, so tritonclient and
KServe clients work unchanged. Errors follow the protocol: `{"error": "..."}`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

import shipyard
from shipyard.core.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.features.online_read import now_us
from shipyard.serving import _json
from shipyard.serving.asgi import REQUEST_ID_SCOPE_KEY
from shipyard.serving.deployments import Deployment
from shipyard.serving.inference import ItemResult, LoadedModel, ModelFailedError, PredictItem
from shipyard.serving.model_server import model_server
from shipyard.serving.predict_routes import counted_predict
from shipyard.serving.routes import JsonCall, JsonResponse, JsonRoute
from shipyard.serving.state import ServerState
from shipyard.serving.v2_codec import (
    HEADER_LENGTH,
    datatype,
    decode_inputs,
    output_tensor,
    split_body,
    tensor_columns,
)

ENDPOINT = "v2"
OUTPUTS = ("prediction", "probabilities")


def v2_error(exc: ShipyardError, request_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The protocol's error body, status and headers for a ShipyardError."""
    body: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, ModelFailedError):
        body["request_id"] = request_id
    retry = getattr(exc, "retry_after_seconds", None)
    return body, exc.http_status, {"Retry-After": str(retry)} if retry is not None else {}


def metadata(deployment: Deployment, loaded: LoadedModel) -> dict[str, Any]:
    """The model metadata document, from the signature."""
    outputs = [{"name": "prediction", "datatype": "BYTES" if loaded.model.signature.output
                is None else datatype(loaded.model.signature.output), "shape": [-1]}]
    if loaded.has_proba:
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, -1]})
    return {"name": deployment.name, "versions": [str(loaded.version)],
            "platform": f"shipyard_{loaded.model.flavor}",
            "inputs": [{"name": c.name, "datatype": datatype(c), "shape": [-1]}
                       for c in loaded.inputs],
            "outputs": outputs}


def _check_version(deployment: Deployment, loaded: LoadedModel, version: str | None) -> None:
    if version is not None and version != str(loaded.version):
        raise NotFoundError(f"Model {deployment.name!r} serves version {loaded.version}, not "
                            f"{version!r}.", hint="Leave the version out of the URL, or ask "
                                                  f"for version {loaded.version}.")


def _requested(doc: dict[str, Any]) -> dict[str, bool]:
    """Output name -> binary, from the request's `outputs` and `binary_data_output`."""
    default = bool((doc.get("parameters") or {}).get("binary_data_output", False))
    wanted = doc.get("outputs")
    if wanted is None:
        return dict.fromkeys(OUTPUTS, default)
    if not isinstance(wanted, list):
        raise InvalidInputError("Field 'outputs' is not an array.",
                                hint='e.g. "outputs": [{"name": "prediction"}]')
    out = {}
    for i, spec in enumerate(wanted):
        name = spec.get("name") if isinstance(spec, dict) else None
        if name not in OUTPUTS:
            raise InvalidInputError(f"Field 'outputs[{i}].name' is {name!r}.",
                                    hint=f"Outputs are {list(OUTPUTS)}.")
        out[name] = bool((spec.get("parameters") or {}).get("binary_data", default))
    return out


def infer_response(deployment: Deployment, result: ItemResult, wanted: dict[str, bool],
                   request_id: str) -> tuple[bytes, dict[str, str]]:
    """The infer answer: JSON, or JSON then binary tensors; and its extra headers."""
    arrays = {"prediction": np.asarray(result.predictions)}
    if result.probabilities is not None:
        arrays["probabilities"] = np.asarray(result.probabilities, dtype=np.float64)
    tensors, blobs = [], []
    for name, binary in wanted.items():
        if name in arrays:
            tensor, raw = output_tensor(name, arrays[name], binary)
            tensors.append(tensor)
            blobs.append(raw)
    header = _json.dump({"model_name": deployment.name, "model_version": str(result.version),
                         "id": request_id, "outputs": tensors})
    if not any(wanted.values()):
        return header, {"content-type": "application/json"}
    return header + b"".join(blobs), {HEADER_LENGTH: str(len(header)),
                                      "content-type": "application/octet-stream"}


def v2_routes(state: ServerState) -> Router:
    """The Open Inference Protocol routes over the app's deployments."""
    server = model_server(state)
    deployments = server.deployments

    async def live(call: JsonCall) -> Any:
        return {"live": True}

    async def ready(call: JsonCall) -> Any:
        result = await state.is_ready()
        return JsonResponse({"ready": result.is_ready}, 200 if result.is_ready else 503)

    async def server_metadata(call: JsonCall) -> Any:
        return {"name": "shipyard", "version": shipyard.__version__,
                "extensions": ["binary_tensor_data"]}

    def served(call: JsonCall) -> tuple[Deployment, LoadedModel]:
        deployment = deployments.get(call.path_params["name"])
        loaded = deployment.loaded()
        _check_version(deployment, loaded, call.path_params.get("version"))
        return deployment, loaded

    async def model_metadata(call: JsonCall) -> Any:
        try:
            return metadata(*served(call))
        except ShipyardError as exc:
            body, status, headers = v2_error(exc, call.request_id)
            return JsonResponse(body, status, headers)

    async def model_ready(call: JsonCall) -> Any:
        try:
            deployment, _ = served(call)
        except ShipyardError as exc:
            body, status, headers = v2_error(exc, call.request_id)
            return JsonResponse({**body, "ready": False}, status, headers)
        return {"name": deployment.name, "ready": True}

    async def infer(request: Request) -> Response:
        request_id = request.scope.get(REQUEST_ID_SCOPE_KEY, "")
        try:
            state.access.check_headers(request.scope["headers"], "read")
            deployment = deployments.get(request.path_params["name"])
            encoding = request.headers.get("content-encoding", "identity")
            if encoding != "identity":
                raise InvalidInputError(f"Content-Encoding {encoding!r} is not supported.",
                                        hint="Send the request uncompressed.")
            doc, binary = split_body(await request.body(), request.headers.get(HEADER_LENGTH))
            wanted = _requested(doc)
            request_id = doc["id"] if isinstance(doc.get("id"), str) and doc["id"] \
                else request_id

            def make_item(loaded: LoadedModel) -> PredictItem:
                _check_version(deployment, loaded, request.path_params.get("version"))
                columns, rows = tensor_columns(decode_inputs(doc, binary), loaded.inputs)
                return PredictItem(request_id, now_us(), rows, instances=columns)

            result = await counted_predict(server, deployment, ENDPOINT, make_item)
        except ShipyardError as exc:
            body, status, headers = v2_error(exc, request_id)
            return Response(_json.dump(body), status, headers, media_type="application/json")
        payload, headers = infer_response(deployment, result, wanted, request_id)
        return Response(payload, 200, headers)

    json_routes = [
        ("/v2/health/live", live), ("/v2/health/ready", ready), ("/v2", server_metadata),
        ("/v2/models/{name}", model_metadata),
        ("/v2/models/{name}/versions/{version}", model_metadata),
        ("/v2/models/{name}/ready", model_ready),
        ("/v2/models/{name}/versions/{version}/ready", model_ready),
    ]
    routes: list[Route] = [
        JsonRoute(path, handler, methods=["GET"], access="open" if "health" in path else "read",
                  tags=["open inference protocol"], name=f"v2_{handler.__name__}")
        for path, handler in json_routes]
    routes += [Route(path, infer, methods=["POST"], name="v2_infer")
               for path in ("/v2/models/{name}/infer",
                            "/v2/models/{name}/versions/{version}/infer")]
    return Router(routes)
