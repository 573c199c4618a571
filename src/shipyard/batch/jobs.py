"""Job definitions (from shipyard.yaml `jobs:`) and their cron schedules (UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

from shipyard.core.errors import ConfigError

KINDS = ("materialize", "batch_predict", "monitor")
OPTIONS = {"materialize": {"views"},
           "monitor": set(),
           "batch_predict": {"features_at", "chunk_rows", "keep_columns", "overwrite",
                             "timestamp_column"}}


@dataclass(frozen=True)
class JobDefinition:
    """A named job: what it runs, where, and when."""

    name: str
    kind: str  # materialize | batch_predict | monitor (evaluates the alert rules)
    model: str | None = None
    input: str | None = None
    output: str | None = None
    cron: str | None = None
    engine: str = "local"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"Job {self.name!r} has kind {self.kind!r}.",
                              hint=f"Use one of {list(KINDS)}.")
        if self.kind == "batch_predict":
            missing = [k for k in ("model", "input", "output") if not getattr(self, k)]
            if missing:
                raise ConfigError(f"Batch prediction job {self.name!r} has no {missing}.",
                                  hint="Set model, input and output in its shipyard.yaml entry.")
        unknown = sorted(set(self.options) - OPTIONS[self.kind])
        if unknown:
            raise ConfigError(f"Job {self.name!r} has unknown options {unknown}.",
                              hint=f"A {self.kind} job takes {sorted(OPTIONS[self.kind])}.")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ConfigError(f"Job {self.name!r} has an invalid cron expression {self.cron!r}.",
                              hint="Use five fields, minute hour day month weekday, e.g. "
                                   "'0 2 * * *' (02:00 UTC daily).")

    def last_tick(self, now: datetime) -> datetime | None:
        """The latest scheduled time at or before `now` (None: no schedule)."""
        if self.cron is None:
            return None
        base = now.replace(microsecond=0) + timedelta(seconds=1)
        return croniter(self.cron, base).get_prev(datetime)

    def next_tick(self, now: datetime) -> datetime | None:
        """The first scheduled time after `now` (None: no schedule)."""
        return None if self.cron is None else croniter(self.cron, now).get_next(datetime)


def check_unique(jobs: list[JobDefinition]) -> dict[str, JobDefinition]:
    """Jobs by name; two with one name are a ConfigError."""
    by_name: dict[str, JobDefinition] = {}
    for job in jobs:
        if job.name in by_name:
            raise ConfigError(f"Two jobs are called {job.name!r}.",
                              hint="Give each entry of `jobs:` in shipyard.yaml its own name.")
        by_name[job.name] = job
    return by_name
