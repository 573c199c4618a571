"""A small monitored project: a registered classifier and three days of logged traffic.

Day 0 is the reference window. Day 1 comes from the same distribution. On day 2 the input
`x2` shifts (and so does the model's score); `x1` and `segment` never do. Days 0 and 1 are
fully labeled by request id; day 2 only half (the rest is still waiting for its labels).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from shipyard.predictions import PredictionBatch
from shipyard.project import Project

DAY0 = datetime(2026, 10, 1, tzinfo=UTC)
ROWS_PER_HOUR = 40
SHIFTED = {"x2", "score"}


def monitoring_yaml(rules: str = "", webhook: str | None = None) -> str:
    """The monitoring section: day 0 as the reference, optional rules and webhook."""
    hook = f"  webhook_url: {webhook}\n" if webhook else ""
    return (f"monitoring:\n  model: fraud@champion\n  reference: predictions\n"
            f"  reference_start: '{DAY0.isoformat()}'\n"
            f"  reference_end: '{(DAY0 + timedelta(days=1)).isoformat()}'\n{hook}"
            + (f"  alerts:\n{rules}" if rules else ""))


def day_frame(day: int, rng: np.random.Generator) -> pd.DataFrame:
    """One day of traffic: hourly rows with their inputs and true outcome."""
    n = 24 * ROWS_PER_HOUR
    x1 = rng.normal(0.0, 1.0, n)
    x2 = rng.normal(1.5 if day == 2 else 0.0, 1.0, n)
    segment = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    outcome = (x1 + x2 + rng.normal(0.0, 1.0, n) > 1.0).astype(int)
    stamps = [DAY0 + timedelta(days=day, hours=i // ROWS_PER_HOUR,
                               seconds=int(rng.integers(0, 3600))) for i in range(n)]
    return pd.DataFrame({"timestamp": stamps, "x1": x1, "x2": x2, "segment": segment,
                         "outcome": outcome})


def build(root: Path) -> tuple[Project, pd.DataFrame]:
    """Register `fraud` (champion), log three days of predictions and some labels."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    project = Project.load(root)
    train = day_frame(0, rng)
    model = LogisticRegression().fit(train[["x1", "x2"]], train["outcome"])
    version = project.models.register("fraud", model, signature=train[["x1", "x2"]])
    project.models.set_alias("fraud", "champion", version.version)
    days = pd.concat([day_frame(d, rng) for d in range(3)], ignore_index=True)
    days["request_id"] = [f"req-{i}" for i in range(len(days))]
    proba = model.predict_proba(days[["x1", "x2"]])
    writer = project.predictions.open_writer()
    stamps = [int(t.timestamp() * 1_000_000) for t in days["timestamp"]]
    for start in range(0, len(days), 500):
        rows = slice(start, start + 500)
        writer.append(PredictionBatch(
            "fraud", version.version, days["request_id"][rows].tolist(), stamps[rows],
            {"x1": days["x1"][rows].tolist(), "x2": days["x2"][rows].tolist(),
             "segment": days["segment"][rows].tolist()},
            (proba[rows, 1] >= 0.5).astype(int).tolist(), proba[rows].tolist()))
    writer.close()
    project.predictions.compact()
    day2 = days.index[days["timestamp"] >= DAY0 + timedelta(days=2)]
    labeled = days.drop(day2[::2])
    project.monitoring.log_labels(labeled[["request_id", "outcome"]], label="outcome")
    return project, days
