"""The local engine, as a user runs it: killed part-way then resumed (exactly once), and its
memory flat as the input grows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import shipyard as sy
from shipyard.batch.output import MANIFEST, SUCCESS, read_manifest
from tests.unit.batch.fraud_project import entities, make_fraud_project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sy.Project]:
    with make_fraud_project(tmp_path_factory.mktemp("resume") / "fraud") as proj:
        yield proj


def python(code: str, **options: object) -> subprocess.Popen[str]:
    """Run `code` in a fresh interpreter, in its own process group (its workers too)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, **options)  # type: ignore[call-overload]


def test_a_killed_run_resumes_without_redoing_or_duplicating(project: sy.Project,
                                                             tmp_path: Path) -> None:
    source = tmp_path / "entities.parquet"
    entities(project, 20_000, seed=5).to_parquet(source, row_group_size=1_000)
    out = tmp_path / "out"
    run = python(f"""
        import time
        import shipyard as sy
        project = sy.Project.load({str(project.root)!r})
        project.batch.predict("fraud@champion", {str(source)!r}, output={str(out)!r},
                              run_id="nightly-1", chunk_rows=1_000, keep_columns=["txn"],
                              progress=lambda done, total: time.sleep(0.3))
    """)
    deadline = time.monotonic() + 180
    while len(read_manifest(out)[1]) < 3:
        assert run.poll() is None, run.communicate()[1]
        assert time.monotonic() < deadline, "the run recorded no partitions in time"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the parent and its pool workers, mid-run
    run.wait()
    _, done = read_manifest(out)
    assert 3 <= len(done) < 20 and not (out / SUCCESS).exists()
    written = {i: (out / f"part-{i:05d}.parquet").stat().st_mtime_ns for i in done}

    result = project.batch.predict("fraud@champion", source, output=out, run_id="nightly-1",
                                   chunk_rows=1_000, keep_columns=["txn"])

    assert result.skipped_partitions >= len(done) and result.partitions == 20
    assert {i: (out / f"part-{i:05d}.parquet").stat().st_mtime_ns for i in done} == written
    scores = pd.read_parquet(out)
    assert len(scores) == 20_000 and sorted(scores["txn"]) == list(range(20_000))
    assert (out / SUCCESS).exists() and not list(out.glob(".*.tmp"))
    assert len(read_manifest(out)[1]) == 20
    record = project.batch.get_run("nightly-1")
    assert (record.status, record.attempts, record.row_count) == ("succeeded", 2, 20_000)


def test_a_resumed_run_must_be_the_same_run(project: sy.Project, tmp_path: Path) -> None:
    frame = entities(project, 3_000)
    out = tmp_path / "out"
    project.batch.predict("fraud@champion", frame, output=out, run_id="r1", chunk_rows=1_000)
    lines = (out / MANIFEST).read_text().splitlines()
    (out / MANIFEST).write_text("\n".join(lines[:2]) + "\n")  # as if stopped after one part
    (out / SUCCESS).unlink()
    with pytest.raises(sy.ConflictError, match="cannot resume: its input changed"):
        project.batch.predict("fraud@champion", frame.iloc[::-1], output=out, run_id="r1",
                              chunk_rows=1_000)
    with pytest.raises(sy.ConflictError, match="holds unfinished run 'r1'") as error:
        project.batch.predict("fraud@champion", frame, output=out, run_id="r2",
                              chunk_rows=1_000)
    assert "run_id='r1'" in (error.value.hint or "")
    result = project.batch.predict("fraud@champion", frame, output=out, run_id="r1",
                                   chunk_rows=1_000)
    assert (result.skipped_partitions, result.rows) == (1, 3_000)
    assert len(pd.read_parquet(out)) == 3_000


def peak_rss(project: sy.Project, source: Path, out: Path) -> int:
    """The local engine's peak RSS (parent + workers) scoring `source` in a fresh process."""
    run = python(f"""
        import json
        import shipyard as sy
        project = sy.Project.load({str(project.root)!r})
        result = project.batch.predict("fraud@champion", {str(source)!r}, output={str(out)!r},
                                       chunk_rows=10_000)
        print(json.dumps({{"rows": result.rows, "peak": result.peak_rss_bytes}}))
    """)
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    return int(report["peak"])


def test_memory_stays_flat_as_the_input_grows(project: sy.Project, tmp_path: Path) -> None:
    frame = entities(project, 500_000, seed=9)
    frame.iloc[:100_000].to_parquet(tmp_path / "small.parquet", row_group_size=10_000)
    frame.to_parquet(tmp_path / "large.parquet", row_group_size=10_000)
    del frame
    small = peak_rss(project, tmp_path / "small.parquet", tmp_path / "out_small")
    large = peak_rss(project, tmp_path / "large.parquet", tmp_path / "out_large")
    assert len(pd.read_parquet(tmp_path / "out_large", columns=["run_id"])) == 500_000
    # 5x the rows: the same partitions, more of them; RSS may not grow with the input
    assert large < small * 1.05 + 32 * 2**20, (small, large)
