"""JSON routes: the hot-path route type, dispatched by the server without a framework layer.

A `JsonRoute` is a Starlette `Route`, so it also works in any Starlette or FastAPI router; in
an app made by `create_app` the server calls its handler directly (exact paths by a dict
lookup), skipping the per-request framework work. Its handler takes a `JsonCall` and returns
any JSON-serializable value (or a `JsonResponse` for another status or headers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.serving import _json
from shipyard.serving.auth import ACCESS_KINDS, AccessKind
from shipyard.serving.errors import UnauthorizedError

ACCESS_SCOPE_KEY = "shipyard.access"  # the app's `Access`, in every request's ASGI scope


@dataclass(slots=True)
class JsonCall:
    """One request to a JSON route: the parsed body, path parameters, headers, request id."""

    body: Any  # the parsed JSON document; None when the request has no body
    path_params: dict[str, Any]
    raw_headers: Sequence[tuple[bytes, bytes]]
    request_id: str
    scope: dict[str, Any] = field(repr=False, default_factory=dict)

    def header(self, name: str) -> str | None:
        """A request header's value (case-insensitive name), or None."""
        key = name.lower().encode("latin-1")
        for k, v in self.raw_headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None


@dataclass(frozen=True, slots=True)
class JsonResponse:
    """A handler's result with a status other than 200, or extra headers."""

    content: Any
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


JsonHandler = Callable[[JsonCall], Awaitable[Any]]


class JsonRoute(Route):
    """A route whose handler maps a JSON request to a JSON response.

    Args:
        path: The path, with Starlette `{param}` (or `{param:int}`) placeholders.
        handler: `async def handler(call: JsonCall) -> Any`.
        methods: HTTP methods, POST by default.
        access: "open", "read" or "write": "write" routes (management) need the bearer
            token whenever one is configured, "read" routes only with `auth_reads`.
        request_model, response_model: pydantic models, for the OpenAPI document only (the
            handler validates its input itself, with errors naming the field).
    """

    def __init__(self, path: str, handler: JsonHandler, *, methods: Sequence[str] = ("POST",),
                 name: str | None = None, access: AccessKind = "read",
                 summary: str | None = None, description: str | None = None,
                 tags: Sequence[str] = (), request_model: type[Any] | None = None,
                 response_model: type[Any] | None = None, status_code: int = 200) -> None:
        if access not in ACCESS_KINDS:
            raise ValueError(f"access must be one of {ACCESS_KINDS}, not {access!r}")
        self.handler = handler
        self.access: AccessKind = access
        self.summary = summary
        self.description = description or (handler.__doc__ or "").strip() or None
        self.tags = list(tags)
        self.request_model = request_model
        self.response_model = response_model
        self.status_code = status_code
        super().__init__(path, self._standalone, methods=list(methods),
                         name=name or handler.__name__)

    @property
    def is_exact(self) -> bool:
        """Whether the path has no parameters (dispatched by a dict lookup)."""
        return not self.param_convertors

    async def _standalone(self, request: Request) -> Response:
        """The route outside `create_app`: same handler, through Starlette's Request."""
        access = request.scope.get(ACCESS_SCOPE_KEY)
        if access is None and self.access == "write":  # fail closed outside create_app
            raise UnauthorizedError(f"Route {self.path!r} is a write route and this app has no "
                                    "access rule.", hint="Serve it in an app made by create_app.")
        if access is not None:
            access.check_headers(request.scope["headers"], self.access)
        raw = await request.body()
        call = JsonCall(_json.load(raw) if raw else None, dict(request.path_params),
                        request.scope["headers"], request.headers.get("x-request-id", ""),
                        request.scope)
        result = await self.handler(call)
        if isinstance(result, JsonResponse):
            return Response(_json.dump(result.content), result.status_code, result.headers,
                            media_type="application/json")
        return Response(_json.dump(result), self.status_code, media_type="application/json")
