"""Monitoring as a scheduled job: the scheduler evaluates the alert rules on their cron tick."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from shipyard.batch import Scheduler

from .monitored import DAY0, SHIFTED, build, monitoring_yaml

JOBS = """\
jobs:
  - name: watch_fraud
    kind: monitor
    cron: "0 * * * *"
"""


def test_the_scheduler_runs_monitor_jobs_and_records_what_fired(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "shipyard.yaml").write_text(
        "project: shop\n" + monitoring_yaml("    - {metric: drift, column: '*', window: 1d, "
                                            "min_rows: 100}\n") + JOBS)
    project, _ = build(root)
    with project:
        tick = DAY0 + timedelta(days=3)  # the window of day 2, where x2 (and the score) shift
        ran = Scheduler(project.batch, holder="a").run_pending(tick + timedelta(minutes=5))
        assert [(o.job, o.due, o.error) for o in ran] == [("watch_fraud", tick, None)]
        run = ran[0].run
        assert run is not None and (run.kind, run.status) == ("monitor", "succeeded")
        firing = {a.column for a in project.monitoring.list_alerts() if a.status == "fired"}
        assert firing == SHIFTED
        assert run.row_count == 3 and run.partitions == len(SHIFTED)  # 3 verdicts, 2 events
        assert Scheduler(project.batch, holder="b").run_pending(tick + timedelta(minutes=6)) == []
