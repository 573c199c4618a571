"""Feature freshness on SQLite and Redis: the age of the newest value written online per view."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard as sy
from tests.contract._online import NOW, H, stats_frame


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """Freshness does not depend on the metadata database: SQLite only."""
    return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"


def age(project: sy.Project, view: str = "stats") -> float | None:
    """The freshness of a view at NOW, in seconds (None: no record of it)."""
    return project.monitoring.freshness(NOW.to_pydatetime()).get(view)


def test_freshness_reflects_a_push_without_any_materialization(online_project: sy.Project
                                                               ) -> None:
    assert age(online_project) is None
    online_project.features.push("stats_push", stats_frame([(7, NOW - H / 2, 7.5)]))
    assert age(online_project) == 1_800.0
    online_project.features.push("stats_push", stats_frame([(8, NOW - H / 4, 8.0)]))
    assert age(online_project) == 900.0
    # an older row (another key, so the store writes it) does not make the view look staler
    online_project.features.push("stats_push", stats_frame([(9, NOW - 2 * H, 9.0)]))
    assert age(online_project) == 900.0


def test_freshness_is_the_newest_event_materialized_not_the_watermark(
        online_project: sy.Project) -> None:
    online_project.features.materialize(None, NOW)  # the batch row of stats is from NOW - H
    assert age(online_project) == 3_600.0
    assert age(online_project, "pairs") == 100 * 3_600.0
    online_project.features.push("stats_push", stats_frame([(1, NOW - H / 2, 5.0)]))
    assert age(online_project) == 1_800.0
    online_project.features.materialize(None, NOW)  # a rerun writes older events: no change
    assert age(online_project) == 1_800.0
