"""Time helpers: Shipyard works in timezone-aware UTC; naive timestamps mean UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["UTC", "seconds", "to_utc", "utc_now"]


def to_utc(value: datetime | str | pd.Timestamp) -> datetime:
    """Return `value` as an aware UTC datetime; naive values are taken to be UTC."""
    if type(value) is datetime:  # the common case (database rows), without importing pandas
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"Cannot read {value!r} as a timestamp.",
            hint="Pass a datetime or an ISO 8601 string such as '2026-11-01T00:00:00Z'.",
        ) from exc
    if ts is pd.NaT:
        raise InvalidInputError("A timestamp is missing (NaT).", hint="Pass a real timestamp.")
    ts = ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)
    return ts.to_pydatetime()


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def seconds(delta: timedelta | None) -> int | None:
    """A timedelta as whole seconds (None stays None)."""
    return None if delta is None else int(delta.total_seconds())
