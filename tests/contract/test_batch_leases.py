"""Job leases on SQLite and PostgreSQL: one holder at a time, each scheduled tick run once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.batch.leases import Leases
from shipyard.metadata.db import Database

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
TICK = NOW - timedelta(minutes=1)


@pytest.fixture
def db(metadata_url: str) -> Iterator[Database]:
    if metadata_url.startswith("sqlite:///"):
        Path(metadata_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    database = Database(metadata_url)
    yield database
    database.dispose()


def test_a_held_lease_is_refused_until_released(db: Database) -> None:
    a, b = Leases(db, "proj", "a"), Leases(db, "proj", "b")
    lease = a.acquire("nightly", seconds=60, now=NOW)
    assert lease is not None and lease.holder == "a"
    assert b.acquire("nightly", seconds=60, now=NOW) is None
    assert b.acquire("other", seconds=60, now=NOW) is not None  # leases are per job
    assert Leases(db, "another_project", "b").acquire("nightly", seconds=60, now=NOW)
    state = b.state("nightly")
    assert state.holder == "a" and state.expires_at == NOW + timedelta(seconds=60)
    a.release(lease)
    assert b.acquire("nightly", seconds=60, now=NOW) is not None


def test_an_expired_lease_can_be_taken_and_renewing_keeps_it(db: Database) -> None:
    a, b = Leases(db, "proj", "a"), Leases(db, "proj", "b")
    lease = a.acquire("nightly", seconds=60, now=NOW)
    assert lease is not None
    a.renew(lease, seconds=60, now=NOW + timedelta(seconds=50))
    assert b.acquire("nightly", seconds=60, now=NOW + timedelta(seconds=100)) is None
    assert b.acquire("nightly", seconds=60, now=NOW + timedelta(seconds=111)) is not None


def test_a_tick_runs_once(db: Database) -> None:
    a, b = Leases(db, "proj", "a"), Leases(db, "proj", "b")
    lease = a.acquire("nightly", seconds=60, due=TICK, now=NOW)
    assert lease is not None
    a.release(lease, done=True)
    assert b.acquire("nightly", seconds=60, due=TICK, now=NOW) is None
    assert b.state("nightly").last_due_at == TICK
    later = b.acquire("nightly", seconds=60, due=TICK + timedelta(days=1), now=NOW)
    assert later is not None


def test_an_unfinished_tick_is_taken_again(db: Database) -> None:
    a, b = Leases(db, "proj", "a"), Leases(db, "proj", "b")
    lease = a.acquire("nightly", seconds=60, due=TICK, now=NOW)
    assert lease is not None
    assert b.acquire("nightly", seconds=60, due=TICK, now=NOW + timedelta(seconds=30)) is None
    # a dies without releasing: once its lease expires, b runs (and resumes) the same tick
    assert b.acquire("nightly", seconds=60, due=TICK, now=NOW + timedelta(seconds=61))


def test_of_many_racing_holders_exactly_one_wins(db: Database) -> None:
    db.migrate()
    barrier = threading.Barrier(8)
    won: list[str] = []

    def race(name: str) -> None:
        leases = Leases(db, "proj", name)
        barrier.wait()
        if leases.acquire("nightly", seconds=60, due=TICK, now=NOW) is not None:
            won.append(name)

    threads = [threading.Thread(target=race, args=(f"h{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
