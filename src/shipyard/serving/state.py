"""What every route of one server shares: the project, stores, metrics, access and hooks."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from shipyard.features.online import OnlineStore
from shipyard.features.online_read import OnlineReader
from shipyard.serving.auth import Access, AccessKind
from shipyard.serving.metrics import Metrics

if TYPE_CHECKING:  # L5 types, for annotations only: serving (L4) never imports them at runtime
    from shipyard.project import Project
    from shipyard.settings import Settings

logger = logging.getLogger("shipyard.serving")

Hook = Callable[[], Awaitable[None]]
ReadinessCheck = Callable[[], Any]
"""Sync or async; ready when it returns None or True, not ready when False or it raises."""

READINESS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Readiness:
    """The outcome of the readiness checks: ready or not, and each check's status."""

    is_ready: bool
    checks: dict[str, str]


@dataclass(eq=False)
class ServerState:
    """One server's shared state; route factories get it and may register hooks and checks."""

    project: Project
    settings: Settings
    reader: OnlineReader
    store: OnlineStore
    metrics: Metrics
    access: Access
    max_body_bytes: int
    startup: list[Hook] = field(default_factory=list)
    shutdown: list[Hook] = field(default_factory=list)
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)  # for route factories' own state

    def on_startup(self, hook: Hook) -> Hook:
        """Run `await hook()` when the server starts (in registration order); a decorator."""
        self.startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        """Run `await hook()` when the server stops (in reverse order); a decorator."""
        self.shutdown.append(hook)
        return hook

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """Make /readyz report not ready while `check()` fails (sync checks run in a thread)."""
        self.readiness_checks[name] = check

    def requires(self, kind: AccessKind) -> DependsParam:
        """A FastAPI dependency enforcing the token rule of `kind` ("write": management).

        e.g. `APIRouter(dependencies=[state.requires("write")])`.
        """
        access = self.access

        async def check_access(request: Request) -> None:
            access.check(request.headers.get("authorization"), kind)

        return Depends(check_access)

    async def is_ready(self) -> Readiness:
        """Run every readiness check, concurrently, each within READINESS_TIMEOUT_SECONDS."""
        names = list(self.readiness_checks)
        results = await asyncio.gather(*(_run_check(self.readiness_checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        return Readiness(all(v == "ok" for v in checks.values()), checks)


async def _run_check(check: ReadinessCheck) -> str:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            if inspect.iscoroutinefunction(check):
                result = await check()
            else:
                result = await asyncio.to_thread(check)
                if inspect.isawaitable(result):
                    result = await result
    except TimeoutError:
        return f"timed out after {READINESS_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # a failing check means "not ready", whatever it raised
        message = getattr(exc, "message", None) or str(exc)
        return f"{type(exc).__name__}: {message}"
    return "ok" if result is None or result is True else "failed"
