"""`analysis.analyze` on synthetic logs: every metric kind against the stats functions, shadow
mode, and what cannot be tested yet."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.experiments import stats
from shipyard.experiments.analysis import analyze
from shipyard.experiments.spec import build

START = datetime(2026, 3, 1, tzinfo=UTC)


def _experiment(mode: str = "ab", metrics: list | None = None):  # type: ignore[no-untyped-def]
    e = build("exp", model="m", variants={"control": "m@live", "treatment": "m/2"},
              weights=None, unit="user", mode=mode, metrics=metrics or [], guardrails=[],
              ramp=None, ramp_every=None, seed=None, coverage=1.0, label="label")
    return replace(e, status="running", started_at=START)


def _log(e, n: int = 4000) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    users = np.arange(1, n + 1)
    variants = [e.variant_of(int(u), START) for u in users]
    if e.mode == "shadow":
        users = np.concatenate([users, users])
        variants = ["control"] * n + ["treatment"] * n
    score = rng.uniform(0.05, 0.95, len(users))
    return pd.DataFrame({"request_id": [f"r{u}" for u in users], "user": users,
                         "variant": variants, "experiment": "exp",
                         "version": [1 if v == "control" else 2 for v in variants],
                         "prediction": (score > 0.5).astype(int),
                         "probabilities": [[1 - s, s] for s in score], "latency_ms": 2.0})


def _outcomes(log: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    units = log.drop_duplicates("user")
    treated = (units["variant"] == "treatment").to_numpy()
    pre = rng.gamma(2.0, 5.0, len(units))
    return pd.DataFrame({"user": units["user"].to_numpy(),
                         "revenue": 0.8 * pre + rng.normal(np.where(treated, 3.3, 3.0), 2.0),
                         "pre_revenue": pre,
                         "converted": (rng.random(len(units)) < np.where(treated, 0.14, 0.12)),
                         "clicks": rng.poisson(2.0, len(units)),
                         "sessions": rng.poisson(5.0, len(units)) + 1})


def _arms(log: pd.DataFrame, outcomes: pd.DataFrame) -> dict[str, pd.DataFrame]:
    joined = outcomes.merge(log.drop_duplicates("user")[["user", "variant"]], on="user")
    return {v: joined[joined["variant"] == v] for v in ("control", "treatment")}


def test_every_metric_kind_matches_the_statistics_functions() -> None:
    e = _experiment(metrics=[{"name": "revenue", "covariate": "pre_revenue"},
                             {"name": "converted", "kind": "proportion"},
                             {"name": "clicks", "kind": "ratio", "denominator": "sessions"}])
    log = _log(e)
    outcomes = _outcomes(log)
    result = analyze(e, log, outcomes, bayesian=True)
    arms = _arms(log, outcomes)
    cuped = [stats.CupedSummary.from_values(a["revenue"], a["pre_revenue"]) for a in arms.values()]
    conv = [stats.ProportionSummary.from_values(a["converted"].astype(float))
            for a in arms.values()]
    ratio = [stats.RatioSummary.from_values(a["clicks"], a["sessions"]) for a in arms.values()]
    revenue, converted, clicks = result.comparisons
    assert revenue.kind == "cuped"
    assert revenue.lift == pytest.approx(stats.frequentist_test(*cuped).effect, abs=1e-12)
    assert converted.p_value == pytest.approx(stats.two_proportion_test(*conv).p_value, abs=1e-12)
    assert converted.difference == pytest.approx(conv[1].mean - conv[0].mean, abs=1e-12)
    assert clicks.lift_ci == pytest.approx(stats.frequentist_test(*ratio).ci, abs=1e-12)
    assert revenue.chance_to_win == pytest.approx(stats.bayesian_test(*cuped).chance_to_win)
    holm = stats.holm([c.sequential_p for c in result.comparisons])  # type: ignore[misc]
    assert [c.sequential_p_adjusted for c in result.comparisons] == pytest.approx(holm.adjusted)
    assert revenue.significant(0.05) and revenue.treatment_is_better
    assert result.srm is not None and not result.srm_detected
    assert result.to_dict()["comparisons"][0]["metric"] == "revenue"


def test_shadow_mode_compares_quality_on_labels_only() -> None:
    e = _experiment("shadow", metrics=["log_loss", "revenue"])
    log = _log(e, 1000)
    rng = np.random.default_rng(1)
    score = np.array([p[1] for p in log["probabilities"]])
    truth = np.where(log["variant"] == "treatment", score, 0.5)  # treatment is calibrated
    labels = pd.DataFrame({"request_id": log["request_id"], "user": log["user"],
                           "label": (rng.random(len(log)) < truth).astype(int)})
    labels = labels[log["variant"] == "treatment"]  # one label per request
    result = analyze(e, log, labels)
    control, treatment = result.variants
    assert control.units == treatment.units == 1000 and result.srm is None
    assert treatment.log_loss < control.log_loss  # type: ignore[operator]
    (loss,) = result.comparisons
    assert loss.metric == "log_loss" and loss.treatment_is_better
    assert any("shadow test compares only built-in metrics" in n for n in result.notes)


def test_constant_metrics_and_no_traffic_are_notes_not_crashes() -> None:
    e = _experiment(metrics=["revenue"])
    log = _log(e, 200)
    flat = pd.DataFrame({"user": log["user"], "revenue": 0.0})
    (c,) = analyze(e, log, flat).comparisons
    assert c.p_value is None and "does not vary" in c.note
    empty = analyze(e, log.iloc[:0], None)
    assert empty.comparisons == [] and "No logged predictions" in empty.notes[0]
    assert [v.units for v in empty.variants] == [0, 0]


def test_unit_ids_join_when_a_null_made_the_logged_column_float() -> None:
    # regression: a null unit elsewhere in the log turns int ids into floats ('7.0' vs '7')
    e = _experiment(metrics=["revenue"])
    log = _log(e, 1000)
    outcomes = pd.DataFrame({"user": log["user"],
                             "revenue": np.where(log["variant"] == "treatment", 12.0, 10.0)})
    untagged = pd.DataFrame({"request_id": ["x"], "user": [np.nan], "variant": [None],
                             "experiment": [None], "version": [1], "prediction": [0],
                             "probabilities": [[0.5, 0.5]], "latency_ms": [1.0]})
    floaty = pd.concat([log, untagged], ignore_index=True)
    assert floaty["user"].dtype == np.float64
    (c,) = analyze(e, floaty, outcomes).comparisons
    assert [a.mean for a in c.arms] == pytest.approx([10.0, 12.0])
    labels = pd.DataFrame({"request_id": log["request_id"], "user": log["user"].astype(str),
                           "label": log["user"] % 2})
    result = analyze(replace(e, metrics=[]), floaty, labels)
    assert sum(v.labeled for v in result.variants) == 1000


def _shared_log(e, n: int = 400) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Ten units per request, logged variant by variant (as a server splits a request)."""
    log = _log(e, n).sort_values("variant", kind="stable").reset_index(drop=True)
    return log.assign(request_id=[f"req-{(u - 1) // 10}" for u in log["user"]])


def test_outcomes_by_request_id_of_a_request_with_several_units_are_refused() -> None:
    # regression: every outcome of such a request went to its first unit
    e = _experiment(metrics=["revenue"])
    log = _shared_log(e)
    by_request = pd.DataFrame({"request_id": log["request_id"],
                               "revenue": np.where(log["variant"] == "treatment", 12.0, 10.0)})
    with pytest.raises(InvalidInputError, match="need the unit column 'user'"):
        analyze(e, log, by_request)
    by_unit = by_request.assign(user=log["user"])
    (c,) = analyze(e, log, by_unit).comparisons
    assert [a.mean for a in c.arms] == pytest.approx([10.0, 12.0])
    single = _log(e, 400)  # one unit per request: request_id alone is enough
    alone = pd.DataFrame({"request_id": single["request_id"],
                          "revenue": np.where(single["variant"] == "treatment", 12.0, 10.0)})
    (c,) = analyze(e, single, alone).comparisons
    assert [a.mean for a in c.arms] == pytest.approx([10.0, 12.0])


def test_labels_by_request_id_of_a_request_with_several_units_are_refused() -> None:
    # regression: every row of such a request got the request's last label
    e = _experiment()
    log = _shared_log(e)
    labels = pd.DataFrame({"request_id": log["request_id"], "label": log["user"] % 2})
    with pytest.raises(InvalidInputError, match="need the unit column"):
        analyze(e, log, labels)
    result = analyze(e, log, labels.assign(user=log["user"]))
    assert sum(v.labeled for v in result.variants) == 400
    one_each = labels.drop_duplicates("request_id").assign(label=1)  # labels the whole request
    assert sum(v.labeled for v in analyze(e, log, one_each).variants) == 400
