"""Access control: a bearer token guards write (management) routes, and reads if asked to.

The token is compared in constant time (`hmac.compare_digest`) and never echoed: neither
error bodies nor log lines contain the token or the value a caller sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Literal

from shipyard.serving.errors import ForbiddenError, UnauthorizedError

AccessKind = Literal["open", "read", "write"]
"""Who may call a route: anyone; readers (token only with `auth_reads`); token holders."""

ACCESS_KINDS: tuple[AccessKind, ...] = ("open", "read", "write")
_HINT = ("Send the header 'Authorization: Bearer <token>' with the server's token "
         "(server.auth_token in shipyard.yaml, or SHIPYARD_SERVER__AUTH_TOKEN).")


class Access:
    """The server's token rule: which access kinds need `Authorization: Bearer <token>`."""

    __slots__ = ("_token", "auth_reads")

    def __init__(self, token: str | None, *, auth_reads: bool = False) -> None:
        self._token = token.encode() if token else None
        self.auth_reads = auth_reads

    def __repr__(self) -> str:
        return f"Access(token={'set' if self._token else None}, auth_reads={self.auth_reads})"

    @property
    def has_token(self) -> bool:
        """Whether a token is configured (without it every route is open)."""
        return self._token is not None

    def needs_token(self, kind: AccessKind) -> bool:
        """Whether a route of this access kind needs the token."""
        if self._token is None or kind == "open":
            return False
        return kind == "write" or self.auth_reads

    def check(self, authorization: bytes | str | None, kind: AccessKind) -> None:
        """Raise UnauthorizedError (401) or ForbiddenError (403) unless the header grants `kind`."""
        if not self.needs_token(kind):
            return
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        scheme, _, credentials = (authorization or b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or not credentials.strip():
            raise UnauthorizedError("This route needs a bearer token and the request has none.",
                                    hint=_HINT)
        if not hmac.compare_digest(credentials.strip(), self._token):  # type: ignore[arg-type]
            raise ForbiddenError("The bearer token sent is not this server's token.",
                                 hint=_HINT)

    def check_headers(self, headers: Iterable[tuple[bytes, bytes]], kind: AccessKind) -> None:
        """`check` with the Authorization header found in raw ASGI headers."""
        if not self.needs_token(kind):
            return
        value = None
        for name, raw in headers:
            if name.lower() == b"authorization":
                value = raw
                break
        self.check(value, kind)
