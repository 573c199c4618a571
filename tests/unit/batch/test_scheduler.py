"""The scheduler: materialization and prediction jobs on their cron ticks, each tick once
however many schedulers poll, a failing job reported without stopping the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.batch import Scheduler
from tests.unit.batch.fraud_project import make_fraud_project

JOBS = """
jobs:
  - name: hourly_online
    kind: materialize
    cron: "0 * * * *"
    options: {views: [customer_stats]}
  - name: broken_scores
    kind: batch_predict
    model: fraud@champion
    input: missing.parquet
    output: "out/{date}"
    cron: "30 * * * *"
"""
NOW = datetime(2026, 10, 31, 10, 45, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[sy.Project]:
    with make_fraud_project(tmp_path / "fraud", extra_config=JOBS) as proj:
        yield proj


def test_due_jobs_run_once_per_tick_across_schedulers(project: sy.Project) -> None:
    first, second = Scheduler(project.batch, holder="a"), Scheduler(project.batch, holder="b")
    outcomes = {o.job: o for o in first.run_pending(NOW)}
    assert set(outcomes) == {"hourly_online", "broken_scores"}
    online = outcomes["hourly_online"]
    assert online.due == datetime(2026, 10, 31, 10, 0, tzinfo=UTC) and online.run is not None
    assert (online.run.kind, online.run.status, online.run.job) == (
        "materialize", "succeeded", "hourly_online")
    assert online.run.row_count and online.run.row_count > 0
    broken = outcomes["broken_scores"]
    assert broken.run is None and "missing.parquet' does not exist" in (broken.error or "")
    assert second.run_pending(NOW) == [] and first.run_pending(NOW) == []  # each tick once
    later = first.run_pending(datetime(2026, 10, 31, 11, 5, tzinfo=UTC))
    assert [(o.job, o.due.hour) for o in later] == [("hourly_online", 11)]
    runs = project.batch.list_runs(job="hourly_online")
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert runs[0].features_at.startswith("2026-10-31T11:00")


def test_a_job_running_elsewhere_is_refused(project: sy.Project) -> None:
    lease = project.batch.leases("elsewhere").acquire("hourly_online", seconds=600)
    assert lease is not None
    with pytest.raises(sy.ConflictError, match="Job 'hourly_online' is running in elsewhere"):
        project.batch.run_job("hourly_online")
    ran = Scheduler(project.batch, holder="a").run_pending(NOW)
    assert [o.job for o in ran] == ["broken_scores"]  # the held job's tick waits its turn
    assert project.batch.list_runs(job="hourly_online") == []
    project.batch.leases("elsewhere").release(lease)
    assert project.batch.run_job("hourly_online").status == "succeeded"


def test_a_running_job_keeps_renewing_its_lease(project: sy.Project,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    other = project.batch.leases("other")
    materialize = project.features.materialize_incremental
    seen: list[datetime | None] = []

    def slow(end: datetime, **options: object) -> object:
        """Hold the job until its lease was renewed (materialization reports no progress)."""
        seen.append(other.state("hourly_online").expires_at)
        deadline = time.monotonic() + 30
        while other.state("hourly_online").expires_at == seen[0]:
            assert time.monotonic() < deadline, "the lease was never renewed"
            threading.Event().wait(0.05)
        seen.append(other.state("hourly_online").expires_at)
        assert other.acquire("hourly_online", seconds=60) is None  # still held
        return materialize(end, **options)

    monkeypatch.setattr(project.features, "materialize_incremental", slow)
    run = project.batch.run_job("hourly_online", lease_seconds=1.5)
    assert run.status == "succeeded" and seen[0] is not None and seen[1] > seen[0]
    assert other.acquire("hourly_online", seconds=60) is not None  # released when done
