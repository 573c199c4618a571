"""One exception tree for Shipyard: every error says what is wrong and what to do."""

from __future__ import annotations


class ShipyardError(Exception):
    """Base of every error Shipyard raises on purpose."""

    http_status = 500
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} Hint: {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, str | None]:
        """The JSON body the HTTP API returns for this error."""
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class ConfigError(ShipyardError):
    """shipyard.yaml, an environment variable or an argument is wrong."""

    exit_code = 2


class NotFoundError(ShipyardError, LookupError):
    """A named object (view, feature, model, version, ...) does not exist."""

    http_status = 404


class InvalidInputError(ShipyardError, ValueError):
    """Data or arguments given by the caller are malformed."""

    http_status = 422


class DefinitionError(InvalidInputError):
    """Feature definitions do not validate; nothing was stored."""


class ConflictError(ShipyardError):
    """The operation conflicts with the current state (e.g. a concurrent change)."""

    http_status = 409


class BackendUnavailable(ShipyardError):
    """A backing server (database, cache, object store) cannot be reached."""

    http_status = 503
