"""Incremental-materialization watermarks, on SQLite and PostgreSQL metadata (x both stores)."""

from __future__ import annotations

import sqlalchemy as sa

import shipyard as sy
from shipyard.metadata.tables import materialization_watermarks
from tests.contract._online import NOW, H, online, write_stats
from tests.contract.conftest import OnlineProjectFactory


def test_watermarks_move_forward_only_and_per_project(
        online_project_factory: OnlineProjectFactory) -> None:
    first = online_project_factory(name="first", folder="first")
    second = online_project_factory(name="second", folder="second")
    first.features.materialize_incremental(NOW)
    assert first.features.watermarks.list_all() == {"stats": NOW.to_pydatetime(),
                                                    "pairs": NOW.to_pydatetime()}
    first.features.materialize_incremental(NOW - H, views=["stats"])  # an older end: no move
    assert first.features.watermarks.get("stats") == NOW.to_pydatetime()
    assert second.features.watermarks.list_all() == {}
    first.features.watermarks.reset("stats")
    assert first.features.watermarks.get("stats") is None


def test_the_watermark_table_comes_from_the_migration(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(1, NOW - H, 1.0)])
    online_project.features.materialize_incremental(NOW, views=["stats"])
    with online_project.db.read() as conn:
        rows = conn.execute(sa.select(materialization_watermarks)).all()
    assert [(r.project, r.view) for r in rows] == [("proj", "stats")]
    assert online(online_project, ["stats:value"], [{"customer_id": 1}])["value"] == [1.0]
