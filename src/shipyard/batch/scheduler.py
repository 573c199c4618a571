"""The built-in scheduler: runs each job with a cron schedule once per tick, across processes.

Any number of schedulers may run against one metadata database (one per machine, or two for
safety): a tick is run by whichever takes the job's lease first (see `leases`). Only the
latest tick is run: a scheduler that was down for three ticks runs the job once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shipyard.batch.api import LEASE_SECONDS, Batch
from shipyard.batch.runs import BatchRun
from shipyard.core.errors import ShipyardError
from shipyard.core.time import utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """One job a scheduler ran: its tick, and the run (or the error that stopped it)."""

    job: str
    due: datetime
    run: BatchRun | None
    error: str | None = None


class Scheduler:
    """Polls the jobs with a cron schedule and runs those due, one lease at a time."""

    def __init__(self, batch: Batch, *, holder: str | None = None,
                 lease_seconds: float = LEASE_SECONDS) -> None:
        self.batch = batch
        self.leases = batch.leases(holder)
        self.lease_seconds = lease_seconds

    def due(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Jobs whose latest tick has not run yet (a hint: taking the lease decides)."""
        now = now or utc_now()
        found = []
        for job in self.batch.list_jobs():
            tick = job.last_tick(now)
            if tick is None:
                continue
            last = self.leases.state(job.name).last_due_at
            if last is None or last < tick:
                found.append((job.name, tick))
        return found

    def run_pending(self, now: datetime | None = None) -> list[Outcome]:
        """Run every due job whose lease this scheduler gets; return what it ran."""
        outcomes = []
        for name, tick in self.due(now):
            lease = self.leases.acquire(name, seconds=self.lease_seconds, due=tick, now=now)
            if lease is None:
                continue  # another scheduler runs it, or already did
            done = False  # interrupted (not failed): the tick is taken again, and resumed
            try:
                run = self.batch.run_job(name, scheduled_at=tick, lease=lease,
                                         lease_seconds=self.lease_seconds)
                outcomes.append(Outcome(name, tick, run))
                done = True
            except Exception as exc:  # recorded as a failed run; the next tick tries again
                log.error("job %s (%s) failed: %s", name, tick.isoformat(), exc,
                          exc_info=not isinstance(exc, ShipyardError))
                outcomes.append(Outcome(name, tick, None, getattr(exc, "message", str(exc))))
                done = True
            finally:
                self.leases.release(lease, done=done)
        return outcomes

    def run_forever(self, *, poll_seconds: float = 30.0, stop: threading.Event | None = None,
                    on_outcome: Callable[[Outcome], None] | None = None) -> None:
        """Run due jobs every `poll_seconds` until `stop` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            for outcome in self.run_pending():
                if on_outcome:
                    on_outcome(outcome)
            stop.wait(poll_seconds)
