"""Batch engines: a small protocol, one module per engine, chosen by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shipyard.batch.plan import BatchJob
from shipyard.core.errors import ConfigError

Progress = Callable[[int, int], None]  # (rows done, rows in total)

ENGINES = {"local": "shipyard.batch.local:LocalEngine",
           "spark": "shipyard.batch.spark:SparkEngine"}


@dataclass(frozen=True)
class EngineReport:
    """What an engine did for one run."""

    rows: int  # output rows (every input row, once)
    partitions: int  # output partitions in total
    skipped_partitions: int = 0  # already done by an earlier attempt of the same run
    peak_rss_bytes: int | None = None  # the engine's processes together, at their peaks
    cpu_seconds: float | None = None  # CPU time of the engine's processes for this run


class BatchEngine(Protocol):
    """Joins features, scores and writes the output of a planned job."""

    def run(self, job: BatchJob, progress: Progress | None = None) -> EngineReport:
        """Run the job; the output folder holds every input row exactly once when it returns."""
        ...

    def close(self) -> None:
        """Release the engine's resources."""
        ...


def engine_class(name: str) -> Any:
    """The engine class called `name`; a missing optional package is a ConfigError."""
    if name not in ENGINES:
        raise ConfigError(f"Unknown batch engine {name!r}.", hint=f"Use one of {sorted(ENGINES)}.")
    module, _, attr = ENGINES[name].partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"The batch engine {name!r} needs {exc.name!r}, which is not installed.",
                          hint=f"pip install 'shipyard[{name}]'") from exc
