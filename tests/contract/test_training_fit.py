"""`project.training.fit` end to end on SQLite and PostgreSQL metadata: dataset, time split,
metrics in a run, and a registered version with run and dataset lineage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge

import shipyard as sy
from shipyard.training import SplitSpec
from tests.conftest import ProjectFactory
from tests.contract.test_training_datasets import DEFINITIONS, write_tiny_data


@pytest.fixture
def project(make_project: ProjectFactory) -> sy.Project:
    root = make_project(DEFINITIONS)
    write_tiny_data(root)
    project = sy.Project.load(root)
    project.apply()
    return project


def test_fit_tracks_registers_and_links_run_and_dataset(project: sy.Project) -> None:
    estimator = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    result = project.training.fit(
        estimator, feature_service="svc", labels=project.root / "labels.parquet",
        label="is_fraud", name="fraud", experiment="tiny", alias="champion",
        split=SplitSpec(label_timestamp="label_timestamp"), tags={"team": "risk"})
    assert not hasattr(estimator, "n_iter_")  # a clone was fitted, not the caller's object
    assert result.task == "classifier" and result.features == ("value", "count", "segment")
    assert sum(result.sizes.values()) < 400 and result.sizes["validation"] > 40
    assert result.metrics["validation_auc"] > 0.7 and result.metrics["test_auc"] > 0.7
    assert set(result.metrics) == {f"{s}_{m}" for s in ("validation", "test")
                                   for m in ("auc", "log_loss", "precision", "recall", "f1")}

    version = result.version
    assert version is not None and version.ref == result.ref == "fraud/1"
    assert (version.run_id, version.dataset_id, version.feature_service) == (
        result.run_id, result.dataset.id, "svc")
    assert version.signature.names == list(result.dataset.feature_columns)
    assert version.aliases == ("champion",) and version.tags == {"team": "risk"}
    assert [v.ref for v in project.models.list_versions(feature_view="stats")] == ["fraud/1"]

    run = project.tracking.get_run(result.run_id)
    assert (run.experiment, run.status) == ("tiny", "finished")
    assert run.metrics == pytest.approx(result.metrics)
    assert run.params["dataset_id"] == result.dataset.id
    assert run.params["estimator"] == "sklearn.ensemble._hist_gradient_boosting." \
                                      "gradient_boosting.HistGradientBoostingClassifier"
    assert run.params["estimator.max_iter"] == "20" and run.params["preprocessing"] == "encode"
    assert int(run.params["split.dropped_late_labels"]) > 0
    assert run.tags["shipyard.model_version"] == "fraud/1"

    loaded = project.models.load("fraud@champion")
    rows = result.dataset.to_pandas().tail(50)
    np.testing.assert_allclose(loaded.predict_proba(rows), result.model.predict_proba(
        rows[list(result.features)]))


def test_nulls_are_imputed_for_estimators_that_need_it(project: sy.Project) -> None:
    result = project.training.fit(LogisticRegression(), feature_service="svc",
                                  labels=project.root / "labels.parquet", label="is_fraud",
                                  name="linear", split=(0.6, 0.4))
    assert [name for name, _ in result.model.steps] == ["encode", "impute", "model"]
    assert result.sizes["test"] == 0 and "test_auc" not in result.metrics
    rows = result.dataset.to_pandas()
    assert rows["value"].isna().any()
    assert np.isfinite(project.models.load("linear/1").predict_proba(rows)).all()


def test_regressors_get_error_metrics_and_may_skip_registration(project: sy.Project) -> None:
    labels = pd.read_parquet(project.root / "labels.parquet")
    result = project.training.fit(Ridge(), feature_service="small", labels=labels,
                                  label="amount", register=False)
    assert result.task == "regressor" and result.version is None
    assert set(result.metrics) == {"validation_rmse", "validation_mae", "test_rmse", "test_mae"}
    assert all(math.isfinite(v) and v > 0 for v in result.metrics.values())
    assert project.models.list_models() == []
    assert project.tracking.get_run(result.run_id).experiment == "small"


def test_a_failed_fit_leaves_a_failed_run_and_no_version(project: sy.Project) -> None:
    labels = project.root / "labels.parquet"
    with pytest.raises(sy.InvalidInputError, match="training needs rows on both sides"):
        project.training.fit(LogisticRegression(), feature_service="svc", labels=labels,
                             label="is_fraud", name="fraud", split=["2026-01-01"])
    [run] = project.tracking.list_runs()
    assert run.status == "failed" and "both sides" in run.tags["shipyard.error"]
    assert project.models.list_models() == []
    with pytest.raises(sy.InvalidInputError, match="Alias '1st' is not valid"):
        project.training.fit(LogisticRegression(), feature_service="svc", labels=labels,
                             label="is_fraud", alias="1st")
    assert len(project.tracking.list_runs()) == 1  # bad arguments fail before any run
