"""The server's outer ASGI callable: request ids, body limit, access, metrics, error mapping.

JSON routes are called directly from here (exact paths by one dict lookup, templated paths
by their regex), which keeps the hot path to a few microseconds of our own work; every other
request goes to the FastAPI app (docs, OpenAPI, routers added by other layers) wrapped in the
same request-id, body-limit and metrics handling. The lifespan runs the state's hooks.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.routing import Match

from shipyard.core.errors import ShipyardError
from shipyard.serving import _json
from shipyard.serving.errors import PayloadTooLargeError, internal_error_body
from shipyard.serving.metrics import UNMATCHED
from shipyard.serving.routes import ACCESS_SCOPE_KEY, JsonCall, JsonResponse, JsonRoute
from shipyard.serving.state import ServerState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("shipyard.serving")
REQUEST_ID_SCOPE_KEY = "shipyard.request_id"
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._\-]{1,64}")
_JSON = b"application/json"
# Request ids: a random per-process prefix and a counter (no system call per request).
_RID_PREFIX = os.urandom(4).hex().encode()
_rid_counter = itertools.count()
_MATCH_CACHE = 1024  # templated paths remembered with their route and parameters


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"The request body is larger than this server's limit of "
                                f"{limit:,} bytes.",
                                hint="Send fewer rows per request (split the batch).")


class ServerApp:
    """The ASGI app `create_app` returns; `state` and `api` (the FastAPI app) are public."""

    def __init__(self, state: ServerState, api: ASGIApp, json_routes: Sequence[JsonRoute]
                 ) -> None:
        self.state = state
        self.api = api
        self._exact: dict[tuple[str, str], JsonRoute] = {}
        self._templated: list[JsonRoute] = []
        self._matched: dict[tuple[str, str], tuple[JsonRoute, dict[str, Any]]] = {}
        for route in json_routes:
            if route.is_exact:
                for method in route.methods or ():
                    self._exact.setdefault((method, route.path), route)
            else:
                self._templated.append(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.api(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        request_id = content_length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = value
            elif name == b"x-request-id" and _REQUEST_ID.fullmatch(value):
                request_id = value
        rid = request_id or b"%s%08x" % (_RID_PREFIX, next(_rid_counter))
        scope[REQUEST_ID_SCOPE_KEY] = rid.decode()
        scope[ACCESS_SCOPE_KEY] = self.state.access
        method = scope["method"]
        route = self._exact.get((method, scope["path"]))
        params: dict[str, Any] = {}
        if route is None and self._templated:
            route, params = self._match(scope)
        if route is None:
            status = await self._fallback(scope, receive, send, rid, content_length)
            matched = scope.get("route")
            label = getattr(matched, "path", None) or UNMATCHED
        else:
            status = await self._json(route, params, scope, receive, send, rid, content_length)
            label = route.path
        self.state.metrics.observe(label, method, status, time.perf_counter() - start)

    def _match(self, scope: Scope) -> tuple[JsonRoute | None, dict[str, Any]]:
        key = (scope["method"], scope["path"])
        known = self._matched.get(key)
        if known is not None:  # a path seen before (a model's predict route): no regex
            return known[0], dict(known[1])
        for route in self._templated:
            match, child = route.matches(scope)
            if match is Match.FULL:
                if len(self._matched) >= _MATCH_CACHE:  # bounded: paths come from clients
                    self._matched.clear()
                self._matched[key] = (route, child["path_params"])
                return route, dict(child["path_params"])
        return None, {}

    async def _json(self, route: JsonRoute, params: dict[str, Any], scope: Scope,
                    receive: Receive, send: Send, rid: bytes, content_length: bytes | None
                    ) -> int:
        headers: list[tuple[bytes, bytes]] = []
        try:
            self.state.access.check_headers(scope["headers"], route.access)
            body = await self._body(receive, content_length)
            call = JsonCall(_json.load(body) if body else None, params, scope["headers"],
                            scope[REQUEST_ID_SCOPE_KEY], scope)  # type: ignore[arg-type]
            result = await route.handler(call)
            if isinstance(result, JsonResponse):
                status, payload = result.status_code, _json.dump(result.content)
                headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                           for k, v in result.headers.items()]
            else:
                status, payload = route.status_code, _json.dump(result)
        except _Disconnected:
            return 499  # nginx's "client closed request": nothing to send
        except ShipyardError as exc:
            status, payload = exc.http_status, _json.dump(exc.to_dict())
            if status == 401:
                headers = [(b"www-authenticate", b"Bearer")]
        except Exception:
            logger.exception("Request %s (%s %s) failed", rid.decode(), scope["method"],
                             scope["path"])
            status, payload = 500, _json.dump(internal_error_body(rid.decode()))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", _JSON),
                                (b"content-length", str(len(payload)).encode()),
                                (b"x-request-id", rid), *headers]})
        await send({"type": "http.response.body", "body": payload})
        return status

    async def _body(self, receive: Receive, content_length: bytes | None) -> bytes:
        limit = self.state.max_body_bytes
        if content_length is not None and content_length.isdigit() and int(content_length) > limit:
            raise _too_large(limit)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        body = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise _too_large(limit)
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _fallback(self, scope: Scope, receive: Receive, send: Send, rid: bytes,
                        content_length: bytes | None) -> int:
        limit = self.state.max_body_bytes
        state = {"status": 500, "started": False, "size": 0}
        if content_length is not None and content_length.isdigit() and int(content_length) > limit:
            return await self._send_error(send, _too_large(limit), rid)

        async def limited_receive() -> Message:
            message = await receive()
            state["size"] += len(message.get("body", b""))
            if state["size"] > limit:
                raise _too_large(limit)
            return message

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
            await send(message)

        try:
            await self.api(scope, limited_receive, tagged_send)
        except Exception:
            logger.exception("Request %s (%s %s) failed", rid.decode(), scope["method"],
                             scope["path"])
            if not state["started"]:
                return await self._send_json(send, 500, internal_error_body(rid.decode()), rid)
            return 500
        return int(state["status"])

    async def _send_error(self, send: Send, exc: ShipyardError, rid: bytes) -> int:
        return await self._send_json(send, exc.http_status, exc.to_dict(), rid)

    @staticmethod
    async def _send_json(send: Send, status: int, content: Any, rid: bytes) -> int:
        payload = _json.dump(content)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", _JSON),
                                (b"content-length", str(len(payload)).encode()),
                                (b"x-request-id", rid)]})
        await send({"type": "http.response.body", "body": payload})
        return status

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.state.startup:
                        await hook()
                except Exception as exc:
                    logger.exception("Server startup failed")
                    await send({"type": "lifespan.startup.failed",
                                "message": f"{type(exc).__name__}: {exc}"})
                    return
                # Start-up objects (modules, catalog, models) live as long as the process:
                # frozen, the collector's full passes skip them (one took 250 ms here).
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in reversed(self.state.shutdown):
                    try:
                        await hook()
                    except Exception:
                        logger.exception("A shutdown hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return
