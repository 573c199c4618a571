"""`shipyard runs ...` and `shipyard models ...`: tables, lineage and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from tests.contract.test_apply import BASE, write_data
from tests.e2e._cli import run_cli

X = pd.DataFrame({"count": [1, 5, 2, 8, 3, 9], "ratio": [0.1, 0.9, 0.2, 0.8, 0.3, 0.7],
                  "amount": [10.0, 90.0, 20.0, 80.0, 30.0, 70.0]})
Y = [0, 1, 0, 1, 0, 1]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "200")
    root = tmp_path / "shop"
    root.mkdir()
    (root / "shipyard.yaml").write_text("project: shop\n")
    (root / "definitions.py").write_text(BASE)
    write_data(root)
    return root


def shipyard(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `shipyard ARGS --project ROOT` in-process."""
    return run_cli(capsys, *args, "--project", str(root))


@pytest.fixture
def populated(root: Path) -> dict[str, str]:
    with sy.Project.load(root) as project:
        project.apply()
        ids = {}
        for name, auc in (("small", 0.71), ("big", 0.88)):
            with project.tracking.start_run(experiment="fraud", name=name) as run:
                run.log_params({"C": 1.0 if name == "small" else 10.0})
                run.log_metric("auc", auc)
            ids[name] = run.id
        model = LogisticRegression().fit(X, Y)
        project.models.register("fraud", model, run=ids["small"], feature_service="svc")
        project.models.register("fraud", model, run=ids["big"], feature_service="svc",
                                description="more features")
        project.models.set_alias("fraud", "champion", 2)
    return ids


def test_runs_list_show_and_compare(root: Path, populated: dict[str, str],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = shipyard(root, capsys, "runs", "list", "--order-by", "metrics.auc desc")
    assert code == 0 and "2 run(s)" in out
    assert out.index("big") < out.index("small") and "0.88" in out
    code, out, _ = shipyard(root, capsys, "runs", "list", "-f", "metrics.auc < 0.8")
    assert code == 0 and "small" in out and "big" not in out
    code, out, _ = shipyard(root, capsys, "runs", "show", populated["big"][:8])
    assert code == 0 and "finished" in out and "auc" in out and "params" in out
    code, out, _ = shipyard(root, capsys, "runs", "compare", populated["small"], populated["big"])
    assert code == 0 and "metrics.auc" in out and "0.71" in out and "0.88" in out


def test_models_list_show_alias_and_archive(root: Path, populated: dict[str, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = shipyard(root, capsys, "models", "list")
    assert code == 0 and "fraud" in out and "champion→2" in out
    code, out, _ = shipyard(root, capsys, "models", "show", "fraud@champion")
    assert code == 0 and "model fraud/2" in out and "more features" in out
    assert "svc" in out and "stats" in out and "fraud/big" in out and "Int64" in out
    code, out, _ = shipyard(root, capsys, "models", "show", "fraud")
    assert code == 0 and "model fraud" in out and "champion" in out
    code, out, _ = shipyard(root, capsys, "models", "alias", "fraud", "champion", "1")
    assert code == 0 and "fraud@champion → version 1" in out
    code, out, _ = shipyard(root, capsys, "models", "archive", "fraud/2")
    assert code == 0 and "fraud/2 is now archived" in out
    code, out, _ = shipyard(root, capsys, "models", "alias", "fraud", "champion", "--delete")
    assert code == 0 and "Deleted fraud@champion" in out


def test_errors_are_one_line_with_a_hint(root: Path, populated: dict[str, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = shipyard(root, capsys, "models", "show", "fraud/7")
    assert code == 1 and "Model 'fraud' has no version 7" in err and "Versions: [1, 2]" in err
    code, _, err = shipyard(root, capsys, "models", "archive", "fraud/2")
    assert code == 1 and "served by alias" in err
    code, _, err = shipyard(root, capsys, "runs", "list", "-f", "metrics.auc >")
    assert code == 1 and "is not `<field> <op> <value>`" in err
    code, _, err = shipyard(root, capsys, "runs", "show", "deadbeef")
    assert code == 1 and "does not exist" in err
