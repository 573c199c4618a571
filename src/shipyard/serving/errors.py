"""The errors the HTTP layer adds to the Shipyard tree, and their JSON bodies."""

from __future__ import annotations

from shipyard.core.errors import InvalidInputError, ShipyardError


class BadRequestError(InvalidInputError):
    """The request body is not JSON (or not the JSON document the route takes)."""

    http_status = 400


class PayloadTooLargeError(InvalidInputError):
    """The request body is larger than the server accepts."""

    http_status = 413


class UnauthorizedError(ShipyardError):
    """The route needs a bearer token and the request has none."""

    http_status = 401


class ForbiddenError(ShipyardError):
    """The request's bearer token is not the server's."""

    http_status = 403


class RouteNotFoundError(ShipyardError):
    """No route has this path (404), or none takes this method on it (405)."""

    def __init__(self, message: str, *, hint: str | None = None, http_status: int = 404) -> None:
        super().__init__(message, hint=hint)
        self.http_status = http_status


def internal_error_body(request_id: str) -> dict[str, str]:
    """The body of an unexpected failure: the request id to find it in the logs, nothing else."""
    return {"error": "InternalError",
            "message": f"The server failed to handle request {request_id}.",
            "hint": "The server log has the details under this request id; retry later or "
                    "report it to the operator.",
            "request_id": request_id}
