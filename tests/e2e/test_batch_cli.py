"""`shipyard batch-predict`, `jobs list|run` and `scheduler`: golden paths, one-line errors,
and two schedulers racing for the same job (each tick runs once)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import shipyard as sy
from shipyard.cli.batch import stage_nightly_scoring
from tests.e2e._cli import run_cli
from tests.unit.batch.fraud_project import END, entities, make_fraud_project

ROOT = Path(__file__).resolve().parents[2]
JOBS = """
jobs:
  - name: yearly_scores
    kind: batch_predict
    model: fraud@champion
    input: entities.parquet
    output: "scores/{date}"
    cron: "0 0 1 1 *"
    options: {features_at: scheduled, chunk_rows: 10000, keep_columns: [txn]}
  - name: refresh_online
    kind: materialize
    options: {views: [customer_stats]}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sy.Project]:
    root = tmp_path_factory.mktemp("cli") / "fraud"
    with make_fraud_project(root, extra_config=JOBS) as proj:
        entities(proj, 6_000, seed=2).to_parquet(root / "entities.parquet", row_group_size=2_000)
        yield proj


shipyard = run_cli


def test_batch_predict_writes_scores(project: sy.Project, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = shipyard(capsys, "batch-predict", "fraud@champion",
                              str(project.root / "entities.parquet"), "-o", str(tmp_path / "o"),
                              "--keep", "txn", "--run-id", "cli-1", "-p", str(project.root))
    assert code == 0, err
    assert "6,000 rows scored by fraud/1 on local" in out and "run id cli-1" in out
    assert sorted(pd.read_parquet(tmp_path / "o")["txn"]) == list(range(6_000))
    code, out, err = shipyard(capsys, "batch-predict", "fraud@champion",
                              str(project.root / "entities.parquet"), "-o", str(tmp_path / "o"),
                              "-p", str(project.root))
    assert code == 1 and out.strip() == ""
    assert err.startswith("error: Output") and "holds finished run 'cli-1'" in err
    assert len(err.strip().splitlines()) <= 3  # one message (wrapped), no traceback


def test_batch_predict_reports_bad_input_in_one_line(project: sy.Project, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    entities(project, 10).drop(columns="customer_id").to_parquet(tmp_path / "bad.parquet")
    code, _, err = shipyard(capsys, "batch-predict", "fraud@champion", str(tmp_path / "bad.parquet"),
                            "-o", str(tmp_path / "o"), "-p", str(project.root))
    assert code == 1 and "no entity column 'customer_id'" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_batch_predict_takes_a_worker_count(project: sy.Project, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    source = str(project.root / "entities.parquet")
    code, out, err = shipyard(capsys, "batch-predict", "fraud@champion", source, "-o",
                              str(tmp_path / "o"), "--workers", "1", "-p", str(project.root))
    assert code == 0 and "6,000 rows scored" in out, err
    for args, exit_code, message in (
            (["--workers", "0"], 2, "workers must be a positive integer, not 0"),  # ConfigError
            (["--workers", "2", "--engine", "spark"], 1,
             "--workers sets the local engine's processes, not 'spark'")):
        code, out, err = shipyard(capsys, "batch-predict", "fraud@champion", source, "-o",
                                  str(tmp_path / "x"), *args, "-p", str(project.root))
        assert code == exit_code and message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_jobs_list_and_run(project: sy.Project, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = shipyard(capsys, "jobs", "list", "-p", str(project.root))
    assert code == 0 and "yearly_scores" in out and "0 0 1 1 *" in out
    assert "refresh_online" in out and "manual" in out
    code, out, err = shipyard(capsys, "jobs", "run", "refresh_online", "-p", str(project.root))
    assert code == 0, err
    assert "job refresh_online: succeeded" in out
    code, out, _ = shipyard(capsys, "jobs", "list", "-p", str(project.root))
    assert "succeeded" in out
    code, _, err = shipyard(capsys, "jobs", "run", "nope", "-p", str(project.root))
    assert code == 1 and "Job 'nope' is not defined" in err


def test_two_schedulers_run_a_due_job_once(project: sy.Project) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    command = [sys.executable, "-m", "shipyard.cli.main", "scheduler", "--once", "-p",
               str(project.root)]
    runs = [subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for _ in range(2)]
    results = [run.communicate(timeout=600) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in results]
    outs = sorted(out for out, _ in results)
    assert "0 job(s) run." in outs[0] and "1 job(s) run." in outs[1], outs
    assert "yearly_scores" in outs[1] and "succeeded, 6,000 rows" in outs[1]
    done = project.batch.list_runs(job="yearly_scores")
    assert len(done) == 1 and done[0].status == "succeeded"
    assert done[0].features_at.startswith(f"{pd.Timestamp.now('UTC').year}-01-01T00:00:00")
    scores = pd.read_parquet(project.root / "scores" / f"{pd.Timestamp.now('UTC').year}-01-01")
    assert sorted(scores["txn"]) == list(range(6_000))
    # the tick is done: a third scheduler finds nothing due
    again = subprocess.run(command, env=env, text=True, capture_output=True, timeout=300)
    assert again.returncode == 0 and "0 job(s) run." in again.stdout


def test_the_demo_scores_every_customer_overnight(project: sy.Project,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    labels = project.root / "data" / "labels.parquet"
    summary = stage_nightly_scoring(project, {"paths": {"labels": labels}, "end": END})
    customers = pd.read_parquet(labels)["customer_id"].nunique()
    assert summary.startswith(f"{customers:,} customers scored by fraud/1 as of 2026-11-01 "
                              "00:00 UTC") and "kB)" in summary
    out = capsys.readouterr().out
    assert "Nightly scores, riskiest first" in out and "proba_1" in out
    scores = pd.read_parquet(project.root / "scores" / "2026-11-01")
    assert len(scores) == customers and scores["customer_id"].is_unique
    assert (scores["event_timestamp"] == pd.Timestamp(END)).all()
