"""The model registry on SQLite and PostgreSQL metadata: versions, aliases, lineage, loading."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.artifacts import ChecksumError
from shipyard.artifacts.names import blob_key
from shipyard.models import ModelRef
from tests.conftest import ProjectFactory
from tests.contract.test_apply import BASE, write_data

rng = np.random.default_rng(7)
X = pd.DataFrame({"count": rng.integers(0, 20, 120), "ratio": rng.normal(size=120),
                  "amount": rng.gamma(2.0, 50.0, 120)})
Y = ((X["ratio"] + X["count"] / 10 + rng.normal(size=120) * 0.3) > 1).astype(int)


@pytest.fixture(scope="module")
def classifier() -> LogisticRegression:
    return LogisticRegression().fit(X, Y)


@pytest.fixture
def project(make_project: ProjectFactory) -> sy.Project:
    root = make_project(BASE)
    write_data(root)
    project = sy.Project.load(root)
    project.apply()
    return project


def test_versions_are_numbered_per_name(project: sy.Project, classifier: object) -> None:
    versions = [project.models.register("fraud", classifier, signature=X).version
                for _ in range(3)]
    other = project.models.register("churn", classifier, signature=X)
    assert versions == [1, 2, 3] and other.version == 1
    assert [(m.name, m.version_count, m.latest_version) for m in project.models.list_models()] \
        == [("churn", 1, 1), ("fraud", 3, 3)]


def test_signature_and_lineage_come_from_the_feature_service(project: sy.Project,
                                                             classifier: object) -> None:
    with project.tracking.start_run(experiment="fraud") as run:
        run.log_metric("auc", 0.9)
    mv = project.models.register("fraud", classifier, run=run, dataset="ds-123",
                                 feature_service="svc", description="first")
    assert [(c.name, c.dtype) for c in mv.signature.inputs] == [
        ("count", sy.Int64), ("ratio", sy.Float64), ("amount", sy.Float64)]
    assert mv.signature.output == sy.models.Column("prediction", sy.Int64)
    assert (mv.run_id, mv.dataset_id, mv.feature_service, mv.definitions_version) == (
        run.id, "ds-123", "svc", 1)
    assert mv.views == ["ratio", "stats"]
    assert ("stats", "value") in mv.features  # read by the on-demand view
    users = project.models.list_versions(feature_view="stats")
    assert [u.ref for u in users] == ["fraud/1"]
    assert project.models.list_versions(feature_view="elsewhere") == []


def test_a_model_trained_on_part_of_a_service_gets_that_part(project: sy.Project) -> None:
    narrow = LogisticRegression().fit(X[["ratio", "count"]], Y)
    mv = project.models.register("fraud", narrow, feature_service="svc")
    assert mv.signature.names == ["ratio", "count"]
    alien = LogisticRegression().fit(X.rename(columns={"count": "age"}), Y)
    with pytest.raises(sy.InvalidInputError, match=r"trained on \['age'\], which feature "
                                                   r"service 'svc' does not provide"):
        project.models.register("fraud", alien, feature_service="svc")


def test_without_service_or_example_the_inputs_are_unknown(project: sy.Project,
                                                           classifier: object) -> None:
    with pytest.raises(sy.InvalidInputError, match="Cannot tell which input columns") as info:
        project.models.register("fraud", classifier)
    assert "feature_service" in (info.value.hint or "")
    with pytest.raises(sy.NotFoundError, match="Feature service 'nope'"):
        project.models.register("fraud", classifier, feature_service="nope")
    with pytest.raises(sy.NotFoundError, match="Run 'abc' does not exist"):
        project.models.register("fraud", classifier, signature=X, run="abc")


def test_load_by_version_alias_and_latest(project: sy.Project, classifier: LogisticRegression,
                                          ) -> None:
    for _ in range(2):
        project.models.register("fraud", classifier, signature=X)
    project.models.set_alias("fraud", "champion", 1)
    assert project.models.resolve("fraud@champion") == ModelRef("fraud", version=1)
    assert project.models.resolve("fraud") == ModelRef("fraud", version=2)
    expected = classifier.predict_proba(X)
    for ref, version in (("fraud@champion", 1), ("fraud/2", 2), ("fraud", 2)):
        model = project.models.load(ref)
        assert model.version.version == version
        np.testing.assert_allclose(model.predict_proba(X), expected)
        np.testing.assert_array_equal(model.predict(X), classifier.predict(X))


def test_predict_validates_columns_and_dtypes(project: sy.Project, classifier: object) -> None:
    project.models.register("fraud", classifier, signature=X)
    model = project.models.load("fraud")
    shuffled = X[["amount", "ratio", "count"]].assign(extra="ignored")
    np.testing.assert_array_equal(model.predict(shuffled), model.predict(X))
    with pytest.raises(sy.InvalidInputError, match=r"missing column\(s\) \['amount'\]"):
        model.predict(X.drop(columns=["amount"]))
    with pytest.raises(sy.InvalidInputError, match="'count' has dtype .+ expects Int64"):
        model.predict(X.assign(count=X["count"].astype(str)))


def test_aliases_move_and_are_deleted(project: sy.Project, classifier: object) -> None:
    for _ in range(2):
        project.models.register("fraud", classifier, signature=X)
    project.models.set_alias("fraud", "champion", 1)
    moved = project.models.set_alias("fraud", "champion", 2)
    assert moved.aliases == ("champion",)
    assert project.models.get_version("fraud/1").aliases == ()
    assert project.models.list_models()[0].aliases == {"champion": 2}
    with pytest.raises(sy.NotFoundError, match="has no version 9") as info:
        project.models.set_alias("fraud", "champion", 9)
    assert "Versions: [1, 2]" in (info.value.hint or "")
    project.models.delete_alias("fraud", "champion")
    with pytest.raises(sy.NotFoundError, match="has no alias 'champion'"):
        project.models.load("fraud@champion")
    with pytest.raises(sy.NotFoundError, match="has no alias 'champion'"):
        project.models.delete_alias("fraud", "champion")
    with pytest.raises(sy.NotFoundError, match="'ghost' is not registered"):
        project.models.get_version("ghost@champion")


def test_an_alias_move_is_atomic_for_readers(project: sy.Project, classifier: object) -> None:
    for _ in range(2):
        project.models.register("fraud", classifier, signature=X)
    project.models.set_alias("fraud", "champion", 1)
    seen: list[int] = []
    errors: list[Exception] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(project.models.get_version("fraud@champion").version)
            except Exception as exc:  # noqa: BLE001 - any failure breaks atomicity
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(20):
        project.models.set_alias("fraud", "champion", 2 - i % 2)
    done.set()
    reader.join(timeout=30)
    assert not errors and seen and set(seen) <= {1, 2}


def test_archived_versions_leave_latest_and_lists(project: sy.Project, classifier: object) -> None:
    for _ in range(2):
        project.models.register("fraud", classifier, signature=X)
    project.models.set_alias("fraud", "champion", 2)
    with pytest.raises(sy.ConflictError, match=r"served by alias\(es\) \['champion'\]"):
        project.models.archive("fraud/2")
    project.models.set_alias("fraud", "champion", 1)
    assert project.models.archive("fraud/2").archived
    assert project.models.get_version("fraud").version == 1
    assert [v.ref for v in project.models.list_versions("fraud")] == ["fraud/1"]
    assert len(project.models.list_versions("fraud", include_archived=True)) == 2
    assert project.models.load("fraud/2").version.archived  # still loadable by number
    with pytest.raises(sy.ConflictError, match="archived"):
        project.models.set_alias("fraud", "shadow", 2)
    with pytest.raises(sy.InvalidInputError, match="needs a version number"):
        project.models.archive("fraud")
    assert not project.models.archive("fraud/2", archived=False).archived


def test_tags_and_description_are_searchable(project: sy.Project, classifier: object) -> None:
    project.models.register("fraud", classifier, signature=X, tags={"team": "risk"})
    project.models.register("fraud", classifier, signature=X, tags={"team": "growth"})
    project.models.register("fraud-eu", classifier, signature=X)
    assert [v.ref for v in project.models.list_versions(tags={"team": "risk"})] == ["fraud/1"]
    updated = project.models.update_version("fraud/2", description="retrained",
                                            tags={"team": None, "stage": "prod"})
    assert (updated.description, updated.tags) == ("retrained", {"stage": "prod"})
    assert [m.name for m in project.models.list_models(name_contains="-eu")] == ["fraud-eu"]


def test_a_tampered_package_is_refused_at_load(project: sy.Project, classifier: object) -> None:
    mv = project.models.register("fraud", classifier, signature=X)
    files = project.artifacts.list_dir(mv.artifact)
    project.artifacts.blobs.write_bytes(blob_key(files["model.pkl"].sha256), b"evil pickle")
    with pytest.raises(ChecksumError, match="'model.pkl' is corrupted"):
        project.models.load("fraud/1")


def test_the_manifest_describes_the_package(project: sy.Project, classifier: object,
                                            tmp_path: Path) -> None:
    mv = project.models.register("fraud", classifier, feature_service="svc")
    folder = project.artifacts.download(mv.artifact, tmp_path / "pkg")
    manifest = yaml.safe_load((folder / "model.yaml").read_text())
    assert manifest["flavor"] == "sklearn" and manifest["task"] == "classifier"
    assert manifest["feature_service"] == "svc" and manifest["classes"] == [0, 1]
    assert manifest["signature"]["inputs"][0] == {"name": "count", "dtype": "Int64"}
    assert "scikit-learn" in manifest["libraries"] and manifest["python"].startswith("3.")
    assert set(manifest["files"]) == {"model.pkl"}


REGISTER_SCRIPT = """
import pathlib, sys, time, pandas as pd, shipyard as sy

class Constant:
    def predict(self, frame):
        return [0] * len(frame)

project = sy.Project.load(sys.argv[1])
project.models.list_models()  # connect and migrate before the race
print("ready", flush=True)
while not pathlib.Path(sys.argv[2]).exists():
    time.sleep(0.005)
mv = project.models.register("fraud", Constant(), allow_pickle=True,
                             signature=pd.DataFrame({"x": [1.0]}))
print(mv.version, flush=True)
"""


def test_concurrent_registrations_never_share_a_number(project: sy.Project,
                                                       tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", REGISTER_SCRIPT, str(project.root), str(go)],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    assert all(p.stdout and p.stdout.readline().strip() == "ready" for p in procs)
    go.touch()  # all three register at the same moment
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(int(o) for o in outputs) == [1, 2, 3]
    assert [v.version for v in project.models.list_versions("fraud")] == [1, 2, 3]
