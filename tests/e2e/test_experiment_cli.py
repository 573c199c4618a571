"""`shipyard experiment ...`: create, list, show, start/pause/stop, analyze, conclude; one-line
errors with a non-zero exit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.predictions import PredictionBatch
from tests.e2e._cli import run_cli

X = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0]})


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with model `fraud` v1 (alias champion) and v2."""
    monkeypatch.setenv("COLUMNS", "200")
    root = tmp_path / "shop"
    root.mkdir()
    (root / "shipyard.yaml").write_text("project: shop\n")
    with sy.Project.load(root) as project:
        for c in (1.0, 0.1):
            project.models.register("fraud", LogisticRegression(C=c).fit(X, [0, 0, 1, 1]),
                                    signature=X)
        project.models.set_alias("fraud", "champion", 1)
    return root


def shipyard(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `shipyard ARGS --project ROOT` in-process."""
    return run_cli(capsys, *args, "--project", str(root))


def _traffic(root: Path, name: str) -> Path:
    """Log 1,000 units' predictions as a server would, and write their outcomes to a file."""
    rng = np.random.default_rng(3)
    with sy.Project.load(root) as project:
        e = project.experiments.get(name)
        writer = project.predictions.open_writer()
        now = time.time_ns() // 1000
        outcomes = []
        for variant, version, cost in (("control", 1, 10.0), ("treatment", 2, 8.0)):
            units = [u for u in range(1, 1001) if e.variant_of(u, e.started_at) == variant]
            writer.append(PredictionBatch("fraud", version, [f"r{u}" for u in units],
                                          [now] * len(units), {"customer_id": units},
                                          [0] * len(units), [[0.8, 0.2]] * len(units),
                                          [variant] * len(units), [name] * len(units), 2.0))
            outcomes += [{"customer_id": u, "cost": c} for u, c in
                         zip(units, rng.normal(cost, 2.0, len(units)), strict=True)]
        writer.close()
    path = root / "outcomes.csv"
    pd.DataFrame(outcomes).to_csv(path, index=False)
    return path


def test_the_experiment_lifecycle_from_the_command_line(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = shipyard(root, capsys, "experiment", "create", "v2-test", "--model", "fraud",
                              "--variant", "control=fraud@champion", "--variant",
                              "treatment=fraud/2", "--unit", "customer_id", "--metric",
                              "cost:lower", "--guardrail", "error_rate < 0.05", "--start")
    assert code == 0, err
    assert "v2-test on fraud: running" in out
    code, out, _ = shipyard(root, capsys, "experiment", "list")
    assert code == 0 and "v2-test" in out and "running" in out
    assert shipyard(root, capsys, "experiment", "pause", "v2-test")[0] == 0
    assert shipyard(root, capsys, "experiment", "start", "v2-test")[0] == 0
    outcomes = _traffic(root, "v2-test")
    code, out, err = shipyard(root, capsys, "experiment", "analyze", "v2-test", "--outcomes",
                              str(outcomes), "--bayesian")
    assert code == 0, err
    assert "cost ↓" in out and "SRM p=" in out and "treatment" in out
    code, out, _ = shipyard(root, capsys, "experiment", "conclude", "v2-test", "--outcomes",
                            str(outcomes))
    assert code == 0 and "promote treatment" in out and "(applied)" not in out
    code, out, _ = shipyard(root, capsys, "experiment", "conclude", "v2-test", "--outcomes",
                            str(outcomes), "--apply")
    assert code == 0 and "fraud@champion: version 1 -> 2" in out
    code, out, _ = shipyard(root, capsys, "experiment", "show", "v2-test")
    assert code == 0 and "concluded" in out
    assert [e in out for e in ("created", "start", "pause", "conclude")] == [True] * 4


def test_a_shadow_sample_is_stored_and_shown(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = shipyard(root, capsys, "experiment", "create", "shadow-10", "--model", "fraud",
                              "--variant", "control=fraud@champion", "--variant",
                              "treatment=fraud/2", "--unit", "customer_id", "--mode", "shadow",
                              "--shadow-sample", "0.1")
    assert code == 0, err
    code, out, _ = shipyard(root, capsys, "experiment", "show", "shadow-10")
    assert code == 0 and "shadow sample" in out and "0.1 of units" in out
    with sy.Project.load(root) as project:
        assert project.experiments.get("shadow-10").shadow_sample == 0.1


@pytest.mark.parametrize("args, words", [
    (["show", "nope"], "No experiment 'nope'"),
    (["create", "x", "--model", "fraud", "--variant", "control", "--unit", "customer_id"],
     "is not NAME=VALUE"),
    (["create", "x", "--model", "fraud", "--variant", "control=fraud@champion", "--variant",
      "treatment=fraud/9", "--unit", "customer_id"], "has no version 9"),
    (["create", "x", "--model", "fraud", "--variant", "control=fraud@champion", "--variant",
      "treatment=fraud/2", "--unit", "customer_id", "--mode", "canary"], "needs a ramp"),
    (["analyze", "x", "--outcomes", "missing.csv"], "does not exist"),
    (["create", "x", "--model", "fraud", "--variant", "control=fraud@champion", "--variant",
      "treatment=fraud/2", "--unit", "customer_id", "--mode", "shadow", "--shadow-sample", "0"],
     "shadow_sample 0.0 is not in (0, 1]"),
    (["create", "x", "--model", "fraud", "--variant", "control=fraud@champion", "--variant",
      "treatment=fraud/2", "--unit", "customer_id", "--shadow-sample", "0.5"],
     "for mode='shadow' only"),
])
def test_bad_input_is_one_error_line(root: Path, capsys: pytest.CaptureFixture[str],
                                     args: list[str], words: str) -> None:
    code, out, err = shipyard(root, capsys, "experiment", *args)
    assert code != 0
    assert words in err and err.startswith("error:") and "Traceback" not in err
