"""`create_app`: the real-time ASGI app (online features now; the model server adds routes).

Route factories take the `ServerState` and return a FastAPI `APIRouter` or a Starlette
`Router`; `JsonRoute`s in them are dispatched on the fast path, everything else by FastAPI.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import APIRoute, APIRouter
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Router

import shipyard
from shipyard.core.errors import InvalidInputError, ShipyardError
from shipyard.serving import _json
from shipyard.serving.asgi import REQUEST_ID_SCOPE_KEY, ServerApp
from shipyard.serving.auth import Access
from shipyard.serving.errors import RouteNotFoundError, internal_error_body
from shipyard.serving.features import feature_routes
from shipyard.serving.health import health_routes
from shipyard.serving.metrics import Metrics
from shipyard.serving.routes import JsonRoute
from shipyard.serving.schemas import ErrorBody
from shipyard.serving.state import ServerState, logger

if TYPE_CHECKING:  # an L5 type, for annotations only (serving is L4)
    from shipyard.project import Project

RouteFactory = Callable[[ServerState], APIRouter | Router]
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
_ERRORS = {status: {"model": ErrorBody, "description": text} for status, text in (
    (400, "The body is not JSON"), (404, "A named object does not exist"),
    (413, "The body is too large"), (422, "A field is missing or has a wrong type"),
    (500, "Unexpected failure (see the request id)"), (503, "A backend is unavailable"))}
_AUTH_ERRORS = {401: {"model": ErrorBody, "description": "No bearer token"},
                403: {"model": ErrorBody, "description": "Wrong bearer token"}}


def create_app(project: Project, *, routes: Sequence[RouteFactory] = (),
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               metrics_dir: str | None = None) -> ServerApp:
    """The server of a project: health, metrics and feature routes, plus `routes`' routers.

    Args:
        project: The loaded project; its `server` settings give the token rule.
        routes: Route factories, called once with the `ServerState` (after the built-in
            ones, so they may register hooks and readiness checks on it).
        max_body_bytes: Larger request bodies get 413.
        metrics_dir: prometheus-client's multiprocess folder when several workers serve.
    """
    settings = project.settings
    features = project.features
    state = ServerState(
        project=project, settings=settings, reader=features.online_reader,
        store=features.online, metrics=Metrics(multiprocess_dir=metrics_dir),
        access=Access(settings.server.auth_token, auth_reads=settings.server.auth_reads),
        max_body_bytes=max_body_bytes)
    state.add_readiness_check("online_store", state.store.ping)
    state.on_shutdown(lambda: asyncio.to_thread(project.close))
    state.on_startup(lambda: asyncio.to_thread(_warm_up, state))

    api = FastAPI(title=f"Shipyard: {project.name}", version=shipyard.__version__,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    _install_error_handlers(api)
    json_routes: list[JsonRoute] = []
    for factory in (health_routes, feature_routes, *routes):
        router = factory(state)
        if isinstance(router, APIRouter):
            api.include_router(router)
        elif isinstance(router, Router):
            api.router.routes.extend(router.routes)
        else:
            raise TypeError(f"Route factory {factory!r} returned {type(router).__name__}, "
                            "not an APIRouter or a Router.")
        json_routes += _json_routes(router.routes)
    _install_openapi(api, json_routes, state.access)
    return ServerApp(state, api, json_routes)


def _json_routes(routes: Sequence[BaseRoute]) -> list[JsonRoute]:
    return [r for r in routes if isinstance(r, JsonRoute)]


def _warm_up(state: ServerState) -> None:
    """Open the store and load the catalog before the first request (if there is one)."""
    try:
        state.reader.catalog()
        state.store.ping()
    except ShipyardError as exc:  # not fatal: /readyz reports it, reads get the error
        logger.warning("Warm-up: %s", exc.message)


def _install_error_handlers(api: FastAPI) -> None:
    def json(status: int, content: Any) -> Response:
        return Response(_json.dump(content), status, media_type="application/json")

    async def shipyard_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ShipyardError)
        headers = {"www-authenticate": "Bearer"} if exc.http_status == 401 else None
        response = json(exc.http_status, exc.to_dict())
        response.headers.update(headers or {})
        return response

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return json(422, InvalidInputError(f"Field {where!r}: {first.get('msg', 'invalid')}.",
                                           hint="Fix the request (see /openapi.json).",
                                           ).to_dict())

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if isinstance(exc.__cause__, ShipyardError):  # e.g. body too large while parsing
            return await shipyard_error(request, exc.__cause__)
        if exc.status_code == 404:
            error: ShipyardError = RouteNotFoundError(
                f"No route {request.method} {request.url.path}.",
                hint="See /docs or /openapi.json for the routes.")
        elif exc.status_code == 405:
            error = RouteNotFoundError(f"Route {request.url.path} does not take "
                                       f"{request.method}.", http_status=405,
                                       hint="See /docs or /openapi.json for its methods.")
        else:
            error = ShipyardError(str(exc.detail), hint=None)
            error.http_status = exc.status_code
        response = json(error.http_status, error.to_dict())
        response.headers.update(exc.headers or {})
        return response

    async def unexpected(request: Request, exc: Exception) -> Response:
        # logged once, with the request id, by ServerApp (Starlette re-raises it there)
        return json(500, internal_error_body(request.scope.get(REQUEST_ID_SCOPE_KEY, "-")))

    api.add_exception_handler(ShipyardError, shipyard_error)
    api.add_exception_handler(RequestValidationError, validation_error)
    api.add_exception_handler(HTTPException, http_error)
    api.add_exception_handler(Exception, unexpected)


def _doc_route(route: JsonRoute, access: Access) -> APIRoute:
    """An APIRoute that only documents a JsonRoute in the OpenAPI document."""
    async def endpoint(**_: Any) -> None:  # never called: ServerApp dispatches the route
        return None

    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str)
              for name in route.param_convertors]
    if route.request_model is not None:
        params.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=route.request_model, default=Body(...)))
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    responses: dict[int | str, dict[str, Any]] = dict(_ERRORS)
    extra = None
    if access.needs_token(route.access) or route.access == "write":
        responses.update(_AUTH_ERRORS)
        extra = {"security": [{"bearer": []}]}
    return APIRoute(route.path, endpoint, methods=sorted(set(route.methods or ()) - {"HEAD"}),
                    name=route.name, summary=route.summary, description=route.description,
                    tags=route.tags or None, response_model=route.response_model,
                    status_code=route.status_code, responses=responses, openapi_extra=extra)


def _install_openapi(api: FastAPI, json_routes: Sequence[JsonRoute], access: Access) -> None:
    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            doc_routes = [_doc_route(r, access) for r in json_routes]
            schema = get_openapi(title=api.title, version=api.version,
                                 routes=[*doc_routes, *api.routes])
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "server.auth_token; needed by write routes, and by "
                                          "reads when server.auth_reads is true."}}
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
