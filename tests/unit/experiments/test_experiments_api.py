"""`project.experiments`: the stored lifecycle with history, analysis of logged traffic and
the decision (SRM blocks it; applying a promotion moves the alias). SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.core.errors import ConflictError, NotFoundError
from shipyard.experiments import stats
from shipyard.experiments.spec import Experiment
from shipyard.predictions import PredictionBatch
from tests.conftest import ProjectFactory

VARIANTS = {"control": "fraud@champion", "treatment": "fraud/2"}


@pytest.fixture
def project(make_project: ProjectFactory) -> Iterator[sy.Project]:
    """Model `fraud` with versions 1 (fraud@champion) and 2."""
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "count": [0.0, 1.0, 0.0, 1.0]})
    y = [0, 0, 1, 1]
    with sy.Project.load(make_project()) as proj:
        for c in (1.0, 0.1):
            proj.models.register("fraud", LogisticRegression(C=c).fit(X, y), signature=X)
        proj.models.set_alias("fraud", "champion", 1)
        yield proj


def _log_traffic(project: sy.Project, e: Experiment, units: range, *,
                 keep: float = 1.0) -> pd.DataFrame:
    """Log one prediction per unit as the server would (treatment rows kept with `keep`)."""
    rng = np.random.default_rng(7)
    writer = project.predictions.open_writer()
    rows = []
    now = time.time_ns() // 1000
    for variant, version in (("control", 1), ("treatment", 2)):
        ids = [u for u in units if e.variant_of(u, e.started_at) == variant]
        if variant == "treatment":
            ids = [u for u in ids if rng.random() < keep]
        score = rng.uniform(0, 1, len(ids))
        rids = [f"r{u}" for u in ids]
        writer.append(PredictionBatch("fraud", version, rids, [now] * len(ids),
                                      {"customer_id": ids}, (score > 0.5).astype(int).tolist(),
                                      [[1 - s, s] for s in score], [variant] * len(ids),
                                      [e.name] * len(ids), 1.5))
        rows += [{"customer_id": u, "request_id": r, "variant": variant, "score": s}
                 for u, r, s in zip(ids, rids, score, strict=True)]
    writer.close()
    return pd.DataFrame(rows)


def _outcomes(traffic: pd.DataFrame, *, treatment_loss: float) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    mean = np.where(traffic["variant"] == "treatment", treatment_loss, 10.0)
    return pd.DataFrame({"customer_id": traffic["customer_id"], "request_id": traffic["request_id"],
                         "loss": rng.normal(mean, 3.0), "label": (rng.random(len(traffic))
                                                                 < traffic["score"]).astype(int)})


def test_lifecycle_is_stored_with_its_full_history(project: sy.Project) -> None:
    ex = project.experiments
    e = ex.create("v2-vs-v1", model="fraud", variants=VARIANTS, unit="customer_id",
                  metrics=["loss"], guardrails=["error_rate < 0.05"])
    assert e.status == "draft" and e.guardrails[0].threshold == 0.05
    with pytest.raises(ConflictError, match="exists already"):
        ex.create("v2-vs-v1", model="fraud", variants=VARIANTS, unit="customer_id")
    with pytest.raises(NotFoundError):
        ex.create("bad", model="fraud", variants={"control": "fraud@champion", "t": "fraud/9"},
                  unit="customer_id")
    assert ex.start("v2-vs-v1").status == "running"
    assert ex.running_for("fraud").name == "v2-vs-v1"  # type: ignore[union-attr]
    ex.create("other", model="fraud", variants=VARIANTS, unit="customer_id")
    with pytest.raises(ConflictError, match="already running"):
        ex.start("other")
    assert ex.pause("v2-vs-v1").status == "paused"
    assert ex.running_for("fraud") is None
    with pytest.raises(ConflictError, match="cannot pause"):
        ex.pause("v2-vs-v1")
    ex.start("v2-vs-v1")
    stopped = ex.stop("v2-vs-v1")
    assert stopped.status == "stopped" and stopped.stopped_at is not None
    events = ex.history("v2-vs-v1")
    assert [e["event"] for e in events] == ["created", "start", "pause", "start", "stop"]
    assert events[1]["detail"]["versions"] == {"control": 1, "treatment": 2}
    assert [x.name for x in ex.list(model="fraud")] == ["other", "v2-vs-v1"]
    with pytest.raises(NotFoundError, match="No experiment"):
        ex.get("nope")


def test_analysis_matches_the_statistics_and_a_clear_win_is_promoted(project: sy.Project) -> None:
    ex = project.experiments
    e = ex.create("win", model="fraud", variants=VARIANTS, unit="customer_id",
                  metrics=[{"name": "loss", "higher_is_better": False}, "log_loss"], start=True)
    traffic = _log_traffic(project, e, range(1, 3001))
    outcomes = _outcomes(traffic, treatment_loss=9.0)
    ex.log_outcomes("win", outcomes)
    analysis = ex.analyze("win")
    assert [v.units for v in analysis.variants] == [
        int((traffic["variant"] == v).sum()) for v in ("control", "treatment")]
    assert analysis.variants[0].latency_p99_ms == pytest.approx(1.5)
    assert not analysis.srm_detected
    loss = analysis.comparisons[0]
    arm = {v: stats.MeanSummary.from_values(outcomes.loc[traffic["variant"] == v, "loss"])
           for v in ("control", "treatment")}
    expected = stats.frequentist_test(arm["control"], arm["treatment"], relative=True)
    assert loss.lift == pytest.approx(expected.effect, abs=1e-9)
    assert loss.lift_ci == pytest.approx(expected.ci, abs=1e-9)
    assert loss.arms[0].variance == pytest.approx(arm["control"].variance)
    sequential = stats.sequential_test(arm["control"], arm["treatment"], relative=True)
    assert loss.sequential_p == pytest.approx(sequential.p_value, abs=1e-12)
    p = [c.p_value for c in analysis.comparisons]
    assert [c.p_adjusted for c in analysis.comparisons] == pytest.approx(stats.holm(p).adjusted)
    auc = analysis.variants[0].auc
    assert auc is not None and 0.5 < auc < 1  # labels drawn from the scores

    decision = ex.conclude("win")
    assert decision.action == "promote" and decision.variant == "treatment"
    assert project.models.resolve("fraud@champion").version == 1  # not applied yet
    applied = ex.conclude("win", apply=True)
    assert applied.applied and applied.changes == ["fraud@champion: version 1 -> 2"]
    assert project.models.resolve("fraud@champion").version == 2
    done = ex.get("win")
    assert done.status == "concluded" and done.decision is not None
    assert done.decision["action"] == "promote"
    assert done.decision["evidence"]["comparisons"][0]["metric"] == "loss"
    assert ex.history("win")[-1]["event"] == "conclude"


def test_a_broken_split_is_flagged_and_blocks_the_decision(project: sy.Project) -> None:
    ex = project.experiments
    e = ex.create("srm", model="fraud", variants=VARIANTS, unit="customer_id",
                  metrics=[{"name": "loss", "higher_is_better": False}], start=True)
    traffic = _log_traffic(project, e, range(1, 3001), keep=0.85)  # treatment rows lost
    analysis = ex.analyze("srm", _outcomes(traffic, treatment_loss=9.0))
    assert analysis.srm_detected and analysis.srm is not None and analysis.srm.p_value < 1e-3
    decision = ex.conclude("srm", outcomes=_outcomes(traffic, treatment_loss=9.0), apply=True)
    assert decision.action == "keep running" and not decision.applied
    assert "Sample ratio mismatch" in decision.reasons[0]
    assert ex.get("srm").status == "running"


def test_a_worse_treatment_is_rolled_back_and_a_tie_keeps_running(project: sy.Project) -> None:
    ex = project.experiments
    e = ex.create("lose", model="fraud", variants=VARIANTS, unit="customer_id",
                  metrics=[{"name": "loss", "higher_is_better": False}], start=True)
    traffic = _log_traffic(project, e, range(1, 3001))
    tie = ex.conclude("lose", outcomes=_outcomes(traffic, treatment_loss=10.0))
    assert tie.action == "keep running" and "not significant yet" in tie.reasons[0]
    worse = ex.conclude("lose", outcomes=_outcomes(traffic, treatment_loss=11.0), apply=True)
    assert worse.action == "rollback" and worse.changes == ["fraud@champion stays on version 1"]
    assert project.models.resolve("fraud@champion").version == 1
    assert ex.get("lose").status == "concluded"


def test_units_seen_in_two_variants_are_left_out(project: sy.Project) -> None:
    ex = project.experiments
    e = ex.create("mixed", model="fraud", variants=VARIANTS, unit="customer_id", start=True)
    writer = project.predictions.open_writer()
    now = time.time_ns() // 1000
    for variant, version in (("control", 1), ("treatment", 2)):
        writer.append(PredictionBatch("fraud", version, ["a", "b"], [now] * 2,
                                      {"customer_id": [1, 2 if variant == "control" else 3]},
                                      [0, 1], None, [variant] * 2, [e.name] * 2))
    writer.close()
    analysis = ex.analyze("mixed")
    assert analysis.excluded_units == 1
    assert [v.units for v in analysis.variants] == [1, 1]


def test_quality_uses_the_label_log_when_outcomes_have_no_labels(project: sy.Project) -> None:
    ex = project.experiments
    e = ex.create("labels", model="fraud", variants=VARIANTS, unit="customer_id",
                  metrics=["log_loss"], start=True)
    traffic = _log_traffic(project, e, range(1, 601))
    truth = (traffic["score"] > 0.5).astype(int)  # both arms score perfectly against it
    project.monitoring.log_labels(pd.DataFrame({"request_id": traffic["request_id"],
                                                "label": truth}))
    analysis = ex.analyze("labels")
    assert [v.labeled for v in analysis.variants] == [
        int((traffic["variant"] == v).sum()) for v in ("control", "treatment")]
    assert [v.auc for v in analysis.variants] == [1.0, 1.0]
    assert analysis.comparisons[0].metric == "log_loss"
    assert analysis.comparisons[0].sequential_p is not None


def test_two_experiments_cannot_start_on_one_model_at_once(metadata_url: str) -> None:
    # regression: change() read, checked, then wrote under READ COMMITTED: both could start
    import threading

    import sqlalchemy as sa

    from shipyard.experiments.spec import build
    from shipyard.experiments.store import ExperimentStore
    from shipyard.metadata.db import Database

    if metadata_url.startswith("sqlite:///"):
        from pathlib import Path

        Path(metadata_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    stores = [ExperimentStore(Database(metadata_url), "proj") for _ in range(3)]
    for name in ("a", "b"):
        stores[0].insert(build(name, model="fraud", variants=VARIANTS, weights=None,
                               unit="customer_id", mode="ab", metrics=[], guardrails=[], ramp=None,
                               ramp_every=None, seed=None, coverage=1.0, label="label"))
    for _ in range(6):
        with stores[0].db.write() as conn:
            conn.execute(sa.text("UPDATE ab_experiments SET status = 'draft'"))
        barrier, refused = threading.Barrier(2), []

        def start(store: ExperimentStore, name: str, barrier: threading.Barrier = barrier,
                  refused: list[str] = refused) -> None:
            barrier.wait()
            try:
                store.change(name, "start")
            except ConflictError:
                refused.append(name)

        threads = [threading.Thread(target=start, args=(stores[i], n))
                   for i, n in ((1, "a"), (2, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(stores[0].list(status="running")) == 1 and len(refused) == 1
