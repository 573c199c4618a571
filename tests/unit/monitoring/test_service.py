"""`project.monitoring` end to end in-process: windows from stored hourly profiles, labels,
alerts that de-duplicate, and the self-contained HTML report."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from shipyard.core.errors import ConfigError, InvalidInputError
from shipyard.monitoring import build_profile
from shipyard.monitoring.tables import profiles
from shipyard.monitoring.windows import WindowProfiles, monitored_frame, parse_window
from shipyard.project import Project
from tests.conftest import ProjectFactory

from .monitored import DAY0, SHIFTED, build, monitoring_yaml

RULES = """\
    - {metric: drift, column: "*", window: 1d, min_rows: 100}
    - {metric: share_drifted, window: 1d, threshold: 0.5, severity: critical, min_rows: 100}
    - {metric: auc, window: 1d, threshold: 0.6, min_rows: 100}
"""


def _monitored(root: Path) -> Iterator[tuple[Project, pd.DataFrame]]:
    root.mkdir()
    (root / "shipyard.yaml").write_text("project: shop\n" + monitoring_yaml(RULES))
    project, days = build(root)
    yield project, days
    project.close()


@pytest.fixture
def monitored(tmp_path: Path) -> Iterator[tuple[Project, pd.DataFrame]]:
    """A fresh monitored project, for tests that change its labels or alert states."""
    yield from _monitored(tmp_path / "project")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, pd.DataFrame]]:
    """One monitored project for the tests that only read."""
    yield from _monitored(tmp_path_factory.mktemp("shared") / "project")


def test_drift_is_found_on_the_shifted_day_and_columns_only(shared: tuple[Project, pd.DataFrame]
                                                             ) -> None:
    project, days = shared
    day1, day2 = project.monitoring.timeline(start=DAY0 + timedelta(days=1),
                                             end=DAY0 + timedelta(days=3), step="1d")
    assert day1.n_rows == day2.n_rows == 960
    assert day1.drift.drifted_columns == []
    assert set(day2.drift.drifted_columns) == SHIFTED
    assert list(day2.drift.columns) == ["x1", "x2", "score"]


def test_performance_counts_labels_and_cbpe_sees_the_unlabeled_rows(
        shared: tuple[Project, pd.DataFrame]) -> None:
    project, days = shared
    day1, day2 = project.monitoring.timeline(start=DAY0 + timedelta(days=1),
                                             end=DAY0 + timedelta(days=3), step="1d")
    assert (day1.n_labeled, day2.n_labeled) == (960, 480)
    assert day1.performance.auc > 0.8  # type: ignore[union-attr]
    assert day2.estimated is not None and day2.estimated.n_rows == 960
    # the estimate tracks the realized figure on the reference-like day
    assert abs(day1.estimated.accuracy - day1.performance.accuracy) < 0.05  # type: ignore[union-attr]


def test_a_day_merged_from_stored_hours_equals_the_raw_day(shared: tuple[Project, pd.DataFrame]
                                                           ) -> None:
    project, _ = shared
    monitoring = project.monitoring
    start, end = DAY0 + timedelta(days=2), DAY0 + timedelta(days=3)
    merged = monitoring.window(start=start, end=end).profile
    with project.db.read() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(profiles).where(
            profiles.c.window_start >= start, profiles.c.window_start < end)).scalar_one()
    assert stored == 24
    reference = monitoring.reference()
    raw = build_profile(monitored_frame(project.predictions.read("fraud", start, end), reference),
                        reference=reference.profile)
    for name, column in raw.columns.items():
        np.testing.assert_array_equal(merged.columns[name].counts, column.counts)
        assert merged.columns[name].mean == pytest.approx(column.mean)  # type: ignore[union-attr]

    def no_rescan(*_: object) -> pd.DataFrame:
        raise AssertionError("stored hours must not be read from the prediction log again")

    again = WindowProfiles(monitoring.store, no_rescan).window(reference, start, end)
    for name, column in merged.columns.items():
        np.testing.assert_array_equal(again.columns[name].counts, column.counts)


def test_late_labels_change_performance_on_the_next_read(monitored: tuple[Project, pd.DataFrame]
                                                         ) -> None:
    project, days = monitored
    day2 = days[days["timestamp"] >= DAY0 + timedelta(days=2)]
    before = project.monitoring.window(start=DAY0 + timedelta(days=2), end=DAY0 + timedelta(days=3))
    flipped = day2.assign(outcome=1 - day2["outcome"])
    project.monitoring.log_labels(flipped[["request_id", "outcome"]], label="outcome")
    after = project.monitoring.window(start=DAY0 + timedelta(days=2), end=DAY0 + timedelta(days=3))
    assert (before.n_labeled, after.n_labeled) == (480, 960)
    assert after.performance.auc < 0.2 < 0.8 < before.performance.auc  # type: ignore[union-attr]


def test_alerts_fire_once_then_resolve(monitored: tuple[Project, pd.DataFrame]) -> None:
    project, _ = monitored
    monitoring = project.monitoring
    quiet = monitoring.run_alerts(at=DAY0 + timedelta(days=2))
    assert quiet.firing == [] and quiet.events == []
    first = monitoring.run_alerts(at=DAY0 + timedelta(days=3))
    assert {(e.rule, e.column) for e in first.events} == {
        ("drift:*", "x2"), ("drift:*", "score"), ("share_drifted:*", "*")}
    again = monitoring.run_alerts(at=DAY0 + timedelta(days=3))
    assert again.events == [] and len(again.firing) == 3
    resolved = monitoring.run_alerts(at=DAY0 + timedelta(days=2))
    assert {e.status for e in resolved.events} == {"resolved"} and len(resolved.events) == 3
    assert len(monitoring.list_alerts("fraud")) == 6


def test_the_report_is_one_self_contained_file(monitored: tuple[Project, pd.DataFrame],
                                               tmp_path: Path) -> None:
    project, _ = monitored
    project.monitoring.run_alerts(at=DAY0 + timedelta(days=3))
    out = project.monitoring.report(start=DAY0 + timedelta(days=1), end=DAY0 + timedelta(days=3),
                                    out=tmp_path / "out" / "report.html")
    page = out.read_text()
    assert not re.search(r"<script[^>]+src=", page)  # nothing to fetch: plotly.js is inline
    assert not re.search(r"<link[^>]+href=[\"']https?:", page)
    assert page.count("Plotly.newPlot(") >= 5  # drift, performance, one per monitored column
    assert len(re.findall(r"plotly\.js v\d", page)) == 1  # the library is embedded once
    for text in ("x2: reference vs current", "score: reference vs current",
                 "Drift score per column over time", "labeled rows", "drift:*", "fired",
                 "Data quality over the whole period", "auc (CBPE)"):
        assert text in page, text


def test_errors_name_the_fix(tmp_path: Path, make_project: ProjectFactory) -> None:
    root = make_project(extra_config="monitoring: {reference: predictions}\n")
    with Project.load(root) as project:
        with pytest.raises(InvalidInputError, match="Which model"):
            project.monitoring.reference()
        with pytest.raises(ConfigError, match="needs reference_start and reference_end"):
            project.monitoring.reference("fraud")
        with pytest.raises(InvalidInputError, match="not a whole number of hours"):
            parse_window("90m")
        with pytest.raises(InvalidInputError, match="not a duration"):
            parse_window("soon")
    bad = make_project(extra_config="monitoring: {alerts: [{metric: drfit}]}\n", folder="bad")
    with Project.load(bad) as project, pytest.raises(ConfigError, match="unknown metric"):
        project.monitoring.run_alerts()


def test_drift_on_frames_keeps_the_design_contract(tmp_path: Path,
                                                    make_project: ProjectFactory) -> None:
    from .synthetic import SHIFTED as SYNTHETIC_SHIFTED
    from .synthetic import make_window

    with Project.load(make_project()) as project:
        report = project.monitoring.drift(reference=make_window(2_000, shifted=False, seed=1),
                                          current=make_window(2_000, shifted=True, seed=2))
    assert set(report.drifted_columns) == set(SYNTHETIC_SHIFTED)


def test_freshness_is_the_age_of_each_views_materialization(tmp_path: Path) -> None:
    from shipyard.metadata.db import Database
    from shipyard.monitoring.service import Monitoring
    from shipyard.predictions import PredictionLog

    def unused(*_: object) -> None:
        raise AssertionError("freshness needs no model")

    monitoring = Monitoring(Database(f"sqlite:///{tmp_path / 'm.db'}"), "p",
                            PredictionLog(tmp_path / "log"), models=unused, get_dataset=unused,
                            get_run=unused, watermarks=lambda: {"customer_stats": DAY0})
    assert monitoring.freshness(DAY0 + timedelta(hours=2)) == {"customer_stats": 7200.0}


def test_freshness_prefers_the_newest_online_event_over_the_watermark(tmp_path: Path) -> None:
    from shipyard.metadata.db import Database
    from shipyard.monitoring.service import Monitoring
    from shipyard.predictions import PredictionLog

    def unused(*_: object) -> None:
        raise AssertionError("freshness needs no model")

    # stats was materialized up to DAY0 + 3h but its newest event is from DAY0 + 1h; pushed
    # was never materialized; old has only a watermark (written before the store kept times)
    monitoring = Monitoring(
        Database(f"sqlite:///{tmp_path / 'm.db'}"), "p", PredictionLog(tmp_path / "log"),
        models=unused, get_dataset=unused, get_run=unused,
        watermarks=lambda: {"stats": DAY0 + timedelta(hours=3), "old": DAY0},
        newest_events=lambda: {"stats": DAY0 + timedelta(hours=1),
                               "pushed": DAY0 + timedelta(hours=5)})
    assert monitoring.freshness(DAY0 + timedelta(hours=4)) == {
        "stats": 3 * 3600.0, "old": 4 * 3600.0, "pushed": 0.0}  # an event after `at`: age 0


def test_predictions_reads_the_log_back_by_model_and_window(shared: tuple[Project, pd.DataFrame]
                                                              ) -> None:
    project, days = shared
    start, end = DAY0 + timedelta(days=1), DAY0 + timedelta(days=2)
    frame = project.monitoring.predictions("fraud@champion", start, end)
    expected = days[(days["timestamp"] >= start) & (days["timestamp"] < end)]
    assert len(frame) == len(expected) == 960
    assert set(frame["request_id"]) == set(expected["request_id"])
    assert frame["timestamp"].is_monotonic_increasing
    assert project.monitoring.predictions("fraud", DAY0, DAY0 + timedelta(days=3)).shape[0] == len(days)
