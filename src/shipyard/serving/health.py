"""`/healthz` (the process answers), `/readyz` (its backends do) and `/metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from shipyard.serving.metrics import CONTENT_TYPE
from shipyard.serving.routes import JsonCall, JsonResponse, JsonRoute
from shipyard.serving.state import ServerState


class Health(BaseModel):
    status: str


class ReadinessBody(BaseModel):
    ready: bool
    checks: dict[str, str]


def health_routes(state: ServerState) -> Router:
    """The health, readiness and metrics routes; all open, whatever the token rule."""

    async def healthz(call: JsonCall) -> Any:
        """Liveness: the server process answers."""
        return {"status": "ok"}

    async def readyz(call: JsonCall) -> Any:
        """Readiness: the online store answers `ping()` and every readiness check passes."""
        result = await state.is_ready()
        return JsonResponse({"ready": result.is_ready, "checks": result.checks},
                            200 if result.is_ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)

    return Router([
        JsonRoute("/healthz", healthz, methods=["GET"], access="open", tags=["health"],
                  summary="Liveness", response_model=Health),
        JsonRoute("/readyz", readyz, methods=["GET"], access="open", tags=["health"],
                  summary="Readiness (503 when not ready)", response_model=ReadinessBody),
        Route("/metrics", metrics, methods=["GET"], include_in_schema=False),
    ])
