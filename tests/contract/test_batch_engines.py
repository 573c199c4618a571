"""Batch prediction: the output is the training path's features through the model, every
input row exactly once, recorded in the metadata store; on every engine (local, Spark), bad
input fails before any work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from tests.unit.batch.fraud_project import entities, make_fraud_project, spark_or_skip

AT = pd.Timestamp("2026-10-29 06:00", tz="UTC")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sy.Project]:
    with make_fraud_project(tmp_path_factory.mktemp("batch") / "fraud") as proj:
        yield proj


@pytest.fixture(params=["local", "spark"])
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "spark":
        spark_or_skip()
    return request.param


def expected_scores(project: sy.Project, frame: pd.DataFrame) -> pd.DataFrame:
    """The training path: historical features, then the registered model's probabilities."""
    features = project.features.get_historical_features(frame, feature_service="fraud_v2")
    model = project.models.load("fraud@champion")
    return features.assign(proba_1=model.predict_proba(features)[:, 1])


def read_output(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values("txn").reset_index(drop=True)


@pytest.mark.parametrize("mode", ["row", "fixed"])
def test_scores_equal_the_training_path(project: sy.Project, mode: str, tmp_path: Path) -> None:
    engine = "local"  # Spark gives the same rows (tests/integration/test_spark_batch.py)
    frame = entities(project, 3_000, seed=1)
    frame.loc[0, "customer_id"] = 10_000_000  # a customer without history: nulls, still scored
    at = AT if mode == "fixed" else "row"
    result = project.batch.predict("fraud@champion", frame, output=tmp_path / "out",
                                   engine=engine, features_at=at, keep_columns=["txn"],
                                   chunk_rows=1_000)
    out = read_output(tmp_path / "out")
    assert result.rows == len(out) == len(frame) and out["txn"].tolist() == list(range(3_000))
    truth = expected_scores(project, frame.assign(event_timestamp=AT) if mode == "fixed"
                            else frame)
    np.testing.assert_allclose(out["proba_1"], truth["proba_1"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["proba_0"] + out["proba_1"], 1.0)
    assert (out["prediction"] == (out["proba_1"] > out["proba_0"]).astype(int)).all()
    times = out["event_timestamp"]
    assert (times == AT).all() if mode == "fixed" else (times == frame["event_timestamp"]).all()
    assert out[["customer_id", "merchant_id"]].equals(frame[["customer_id", "merchant_id"]])
    version = project.models.get_version("fraud@champion")
    assert set(out["model_name"]) == {"fraud"} and set(out["model_version"]) == {version.version}
    assert set(out["run_id"]) == {result.run_id} and result.model == version.ref
    run = project.batch.get_run(result.run_id)
    assert (run.status, run.row_count, run.model, run.engine) == (
        "succeeded", 3_000, version.ref, engine)
    assert run.features_at == ("row" if mode == "row" else AT.isoformat())
    assert result.run_id in [r.id for r in project.batch.list_runs(model="fraud")]


def bad_input_cases(project: sy.Project, tmp_path: Path) -> dict[str, tuple[Any, dict, str]]:
    frame = entities(project, 50)
    missing_times = frame.assign(event_timestamp=frame["event_timestamp"].where(
        frame.index % 2 == 0))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "report.csv").write_text("x\n")
    return {
        "entity column": (frame.drop(columns="merchant_id"), {},
                          "no entity column 'merchant_id', needed by feature view"),
        "request data": (frame.drop(columns="amount"), {}, r"lacks request data \['amount'\]"),
        "no rows": (frame.iloc[:0], {}, "has no rows"),
        "timestamps": (frame.drop(columns="event_timestamp"), {}, "no 'event_timestamp' column"),
        "missing times": (missing_times, {}, "has 25 missing timestamps"),
        "output": (frame, {"output": tmp_path / "taken"}, "already exists"),
        "keep": (frame, {"keep_columns": ["nope"]}, r"keep_columns \['nope'\] are not"),
        "model": (frame, {"model": "fraud@nobody"}, "has no alias 'nobody'"),
        "chunk": (frame, {"chunk_rows": 0}, "chunk_rows must be positive"),
        "key type": (frame.assign(customer_id=frame["customer_id"].astype(str)), {},
                     "join key 'customer_id' holds .*string values but view 'customer_stats'"),
    }


@pytest.mark.parametrize("case", ["entity column", "request data", "no rows", "timestamps",
                                  "missing times", "output", "keep", "model", "chunk",
                                  "key type"])
def test_bad_input_fails_before_any_work(project: sy.Project, engine: str, tmp_path: Path,
                                         case: str) -> None:
    given, options, message = bad_input_cases(project, tmp_path)[case]
    runs = len(project.batch.list_runs())
    options = {"model": "fraud@champion", "output": tmp_path / "out", **options}
    with pytest.raises(sy.ShipyardError, match=message) as error:
        project.batch.predict(options.pop("model"), given, engine=engine, **options)
    assert error.value.hint
    assert not (tmp_path / "out").exists() and len(project.batch.list_runs()) == runs


def test_a_model_whose_feature_service_is_gone_is_refused(project: sy.Project, engine: str,
                                                          tmp_path: Path) -> None:
    definitions = project.root / "features.py"
    original = definitions.read_text()
    project.models.register("fraud_old", project.models.load("fraud@champion")._predictor.model,
                            feature_service="fraud_v2")
    try:
        definitions.write_text(original.replace("fraud_v2 = sy.FeatureService(",
                                                "fraud_v2_renamed = sy.FeatureService(")
                               .replace('"fraud_v2",', '"fraud_v3",'))
        project.__dict__.pop("_definitions", None)
        project.apply()
        with pytest.raises(sy.NotFoundError, match="reads feature service 'fraud_v2', which is "
                                                   "no longer defined") as error:
            project.batch.predict("fraud_old", entities(project, 10), output=tmp_path / "out",
                                  engine=engine)
        assert "shipyard apply" in (error.value.hint or "")
        assert not (tmp_path / "out").exists()
    finally:
        definitions.write_text(original)
        project.__dict__.pop("_definitions", None)
        project.apply()


def test_an_existing_output_needs_overwrite(project: sy.Project, tmp_path: Path) -> None:
    engine = "local"  # the output checks are the engines' shared code
    frame = entities(project, 200)
    first = project.batch.predict("fraud@champion", frame, output=tmp_path / "out",
                                  engine=engine)
    with pytest.raises(sy.ConflictError, match=f"holds finished run '{first.run_id}'") as error:
        project.batch.predict("fraud@champion", frame, output=tmp_path / "out", engine=engine)
    assert "overwrite=True" in (error.value.hint or "")
    second = project.batch.predict("fraud@champion", frame, output=tmp_path / "out",
                                   engine=engine, overwrite=True)
    assert set(pd.read_parquet(tmp_path / "out")["run_id"]) == {second.run_id}
    assert len(pd.read_parquet(tmp_path / "out")) == 200


def test_progress_reaches_every_row(project: sy.Project, tmp_path: Path) -> None:
    engine = "local"  # Spark's (start and end only): tests/integration/test_spark_batch.py
    calls: list[tuple[int, int]] = []
    project.batch.predict("fraud@champion", entities(project, 2_500, seed=3),
                          output=tmp_path / "out", engine=engine, chunk_rows=1_000,
                          progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 2_500), *calls[1:]] and calls[-1] == (2_500, 2_500)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(calls) == 4  # the start, then one per partition
    assert {t for _, t in calls} == {2_500}


def test_runs_are_the_lineage_of_their_model_version(project: sy.Project,
                                                     tmp_path: Path) -> None:
    estimator = project.models.load("fraud@champion")._predictor.model
    for _ in range(2):
        project.models.register("fraud_lineage", estimator, feature_service="fraud_v2")
    frame = entities(project, 100)
    ids = {ref: project.batch.predict(ref, frame, output=tmp_path / ref.replace("/", "-"),
                                      run_id=f"lineage-{ref[-1]}").run_id
           for ref in ("fraud_lineage/1", "fraud_lineage/2")}
    project.models.set_alias("fraud_lineage", "current", 2)
    assert [r.id for r in project.batch.list_runs(model="fraud_lineage/1")] == [ids["fraud_lineage/1"]]
    assert [r.id for r in project.batch.list_runs(model="fraud_lineage@current")] == [
        ids["fraud_lineage/2"]]
    assert {r.id for r in project.batch.list_runs(model="fraud_lineage")} == set(ids.values())
    run = project.batch.get_run(ids["fraud_lineage/2"])
    assert (run.model, run.input, run.output, run.row_count) == (
        "fraud_lineage/2", "DataFrame (100 rows)", str(tmp_path / "fraud_lineage-2"), 100)
    assert run.duration_seconds is not None and run.finished_at is not None


def test_the_local_engine_takes_a_worker_count(project: sy.Project, tmp_path: Path) -> None:
    with pytest.raises(sy.ConfigError, match=r"has no option\(s\) \['threads'\]") as error:
        project.batch.configure_engine("local", threads=2)
    assert "workers" in (error.value.hint or "")
    with pytest.raises(sy.ConfigError, match="workers must be a positive integer, not 0"):
        project.batch.configure_engine("local", workers=0)
    frame = entities(project, 2_000, seed=4)
    outputs = {}
    try:
        for workers in (1, 2):  # in this process, then a pool of two
            project.batch.configure_engine("local", workers=workers)
            project.batch.predict("fraud@champion", frame, output=tmp_path / f"w{workers}",
                                  chunk_rows=500, keep_columns=["txn"])
            outputs[workers] = read_output(tmp_path / f"w{workers}").drop(columns="run_id")
    finally:
        project.batch.configure_engine("local", workers=None)
    pd.testing.assert_frame_equal(outputs[1], outputs[2])
    assert len(outputs[1]) == 2_000
