"""Job definitions: their checks and their cron ticks (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shipyard.batch.jobs import JobDefinition, check_unique
from shipyard.core.errors import ConfigError


def test_the_last_tick_is_at_or_before_now() -> None:
    job = JobDefinition("nightly", "materialize", cron="0 2 * * *")
    at_two = datetime(2026, 5, 3, 2, 0, tzinfo=UTC)
    assert job.last_tick(at_two) == at_two
    assert job.last_tick(datetime(2026, 5, 3, 1, 59, 59, 999, tzinfo=UTC)) == datetime(
        2026, 5, 2, 2, 0, tzinfo=UTC)
    assert job.next_tick(at_two) == datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
    assert JobDefinition("manual", "materialize").last_tick(at_two) is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "export"}, "has kind 'export'"),
    ({"kind": "batch_predict", "model": "fraud"}, r"has no \['input', 'output'\]"),
    ({"kind": "materialize", "cron": "0 2 * *"}, "invalid cron expression"),
    ({"kind": "materialize", "options": {"chunk_rows": 5}}, r"unknown options \['chunk_rows'\]"),
])
def test_bad_definitions_are_config_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        JobDefinition("job", **fields)


def test_job_names_are_unique() -> None:
    job = JobDefinition("a", "materialize")
    with pytest.raises(ConfigError, match="Two jobs are called 'a'"):
        check_unique([job, job])
