"""Tracking: runs, params, metrics, tags, artifacts, status, search and compare; both DBs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.artifacts import ChecksumError
from shipyard.tracking import Run
from tests.conftest import ProjectFactory


@pytest.fixture
def project(make_project: ProjectFactory) -> sy.Project:
    return sy.Project.load(make_project())


def test_a_run_records_params_metrics_tags_and_ends_finished(project: sy.Project) -> None:
    with project.tracking.start_run(experiment="fraud", name="baseline") as run:
        run.log_params({"model": "lgbm", "lr": 0.1})
        run.log_param("model", "lgbm")  # the same value again is fine
        run.log_metrics({"auc": 0.81, "loss": 0.5})
        run.log_metric("auc", 0.85)
        run.set_tags({"team": "risk"})
        assert run.info().status == "running"
    info = project.tracking.get_run(run.id)
    assert (info.name, info.experiment, info.status) == ("baseline", "fraud", "finished")
    assert info.params == {"model": "lgbm", "lr": "0.1"}
    assert info.metrics == {"auc": 0.85, "loss": 0.5}  # the latest step's value
    assert info.tags == {"team": "risk"}
    assert info.end_time is not None and info.end_time >= info.start_time
    assert info.environment["python"].count(".") == 2
    assert "numpy" in info.environment["packages"]


def test_an_exception_marks_the_run_failed_and_propagates(project: sy.Project) -> None:
    with pytest.raises(ZeroDivisionError), project.tracking.start_run(experiment="x") as run:
        run.log_metric("before", 1.0)
        _ = 1 / 0
    info = project.tracking.get_run(run.id)
    assert info.status == "failed" and info.end_time is not None
    assert info.tags["shipyard.error"].startswith("ZeroDivisionError")
    assert info.metrics == {"before": 1.0}


def test_metric_history_keeps_every_step(project: sy.Project) -> None:
    with project.tracking.start_run() as run:
        for loss in (0.9, 0.5, 0.3):
            run.log_metric("loss", loss)  # steps 0, 1, 2
        run.log_metric("loss", 0.25, step=10)
        run.log_metric("loss", float("nan"), step=11)
    history = project.tracking.get_metric_history(run.id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 10, 11]
    assert [m.value for m in history[:4]] == [0.9, 0.5, 0.3, 0.25]
    assert history[4].value != history[4].value  # NaN survives the round trip
    assert all(m.timestamp.tzinfo is not None for m in history)


def test_params_cannot_change_and_bad_values_are_refused(project: sy.Project) -> None:
    with project.tracking.start_run() as run:
        run.log_param("lr", 0.1)
        with pytest.raises(sy.ConflictError, match="already '0.1'"):
            run.log_param("lr", 0.2)
        with pytest.raises(sy.InvalidInputError, match="got text"):
            run.log_metric("auc", "high")  # type: ignore[arg-type]
        with pytest.raises(sy.InvalidInputError, match="printable"):
            run.set_tag("", "x")


def test_runs_can_also_be_ended_by_hand(project: sy.Project) -> None:
    run = project.tracking.start_run(name="manual")
    assert isinstance(run, Run) and run.status == "running"
    run.end()
    with pytest.raises(sy.ConflictError, match="already ended"):
        run.end()
    assert project.tracking.get_run(run.id[:8]).status == "finished"


def _three_runs(project: sy.Project) -> dict[str, str]:
    ids = {}
    for name, model, auc in (("a", "lgbm", 0.80), ("b", "xgb", 0.90), ("c", "lgbm", 0.85)):
        with project.tracking.start_run(experiment="fraud", name=name) as run:
            run.log_params({"model": model})
            run.log_metric("auc", auc)
        ids[name] = run.id
    with project.tracking.start_run(experiment="churn", name="d") as run:
        run.log_params({"model": "lgbm"})
    ids["d"] = run.id
    return ids


def test_search_filters_and_orders(project: sy.Project) -> None:
    _three_runs(project)
    found = project.tracking.list_runs(filter="metrics.auc > 0.8 and params.model = 'lgbm'")
    assert [r.name for r in found] == ["c"]
    by_auc = project.tracking.list_runs(experiment="fraud", order_by="metrics.auc desc")
    assert [r.name for r in by_auc] == ["b", "c", "a"]
    ascending = project.tracking.list_runs(order_by="metrics.auc")
    assert [r.name for r in ascending] == ["a", "c", "b", "d"]  # no auc: last
    newest = project.tracking.list_runs(limit=2)
    assert [r.name for r in newest] == ["d", "c"]
    assert [r.name for r in project.tracking.list_runs(filter="status = 'finished' and "
                                                              "experiment = 'churn'")] == ["d"]


def test_experiments_are_listed_with_run_counts(project: sy.Project) -> None:
    _three_runs(project)
    assert [(e.name, e.run_count) for e in project.tracking.list_experiments()] == [
        ("churn", 1), ("fraud", 3)]


def test_compare_puts_runs_side_by_side(project: sy.Project) -> None:
    ids = _three_runs(project)
    table = project.tracking.compare_runs([ids["a"], ids["b"]])
    assert list(table.columns) == [ids["a"][:8], ids["b"][:8]]
    assert table.loc["metrics.auc"].tolist() == [0.80, 0.90]
    assert table.loc["params.model"].tolist() == ["lgbm", "xgb"]


def test_unknown_and_ambiguous_ids_are_not_found(project: sy.Project) -> None:
    with pytest.raises(sy.NotFoundError, match="does not exist"):
        project.tracking.get_run("0" * 32)
    with pytest.raises(sy.NotFoundError, match="does not exist"):
        project.tracking.get_run("'; drop table runs; --")


def test_artifacts_files_and_folders_round_trip(project: sy.Project, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("auc 0.9")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "roc.svg").write_text("<svg/>")
    with project.tracking.start_run() as run:
        run.log_artifact(report)
        run.log_artifact(plots, name="figures")
    info = project.tracking.get_run(run.id)
    assert sorted(info.artifacts) == ["figures", "report.txt"]
    assert info.artifacts["figures"].kind == "dir"
    out = project.tracking.download_artifact(run.id, "figures", tmp_path / "out")
    assert (out / "roc.svg").read_text() == "<svg/>"
    project.artifacts.blobs.write_bytes(f"blobs/{info.artifacts['report.txt'].sha256[:2]}/"
                                        f"{info.artifacts['report.txt'].sha256}", b"forged")
    with pytest.raises(ChecksumError):
        project.tracking.download_artifact(run.id, "report.txt", tmp_path / "r.txt")
    with pytest.raises(sy.InvalidInputError):
        run.log_artifact(report, name="../escape.txt")


def test_git_commit_and_dirty_flag_are_recorded(project: sy.Project) -> None:
    root = project.root
    git = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "definitions.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    with project.tracking.start_run() as clean:
        pass
    (root / "definitions.py").write_text("# changed\n")
    with project.tracking.start_run() as dirty:
        pass
    assert (project.tracking.get_run(clean.id).git_commit,
            project.tracking.get_run(clean.id).git_dirty) == (head, False)
    assert project.tracking.get_run(dirty.id).git_dirty is True


def test_outside_git_the_commit_is_none(project: sy.Project) -> None:
    with project.tracking.start_run() as run:
        pass
    info = project.tracking.get_run(run.id)
    assert info.git_commit is None and info.git_dirty is None


def test_artifacts_on_the_loopback_s3_store(make_project: ProjectFactory, s3_artifacts: str,
                                            s3_endpoint: str, tmp_path: Path) -> None:
    project = sy.Project.load(make_project(
        extra_config=f"artifacts: {s3_artifacts}\nartifacts_endpoint_url: {s3_endpoint}\n"))
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x01" * 1000)
    with project.tracking.start_run() as run:
        ref = run.log_artifact(model)
    assert project.artifacts.get_bytes(ref) == b"\x01" * 1000
    assert project.artifacts.url.startswith("s3://")
