"""`shipyard train CONFIG.yaml` as users run it, and a cold process that loads the result."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.cli.main import run as cli
from tests.contract.test_training_datasets import DEFINITIONS, write_tiny_data

CONFIG = """
model: fraud
estimator:
  class: sklearn.ensemble.HistGradientBoostingClassifier
  params: {max_iter: 20, random_state: 0}
feature_service: svc
labels: labels.parquet
label: is_fraud
split: {fractions: [0.7, 0.3], label_timestamp: label_timestamp}
experiment: cli
alias: champion
description: from the YAML
"""
HEAVY = ("duckdb", "pyarrow", "pandas", "alembic", "sqlalchemy.orm",
         "sqlalchemy.dialects.postgresql", "shipyard.features", "shipyard.tracking",
         "shipyard.training")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("train") / "shop"
    root.mkdir()
    (root / "shipyard.yaml").write_text("project: shop\n")
    (root / "definitions.py").write_text(DEFINITIONS)
    write_tiny_data(root)
    with sy.Project.load(root) as project:
        project.apply()
    (root / "train.yaml").write_text(CONFIG)
    result = subprocess.run([sys.executable, "-m", "shipyard.cli.main", "train",
                             str(root / "train.yaml"), "--project", str(root)],
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    return root, result.stdout


def test_train_from_yaml_registers_the_model_with_its_alias(trained: tuple[Path, str]) -> None:
    root, out = trained
    assert "fraud: holdout metrics" in out and "registered fraud/1 (aliases: champion)" in out
    assert "auc" in out and "log_loss" in out and "validation" in out
    with sy.Project.load(root) as project:
        version = project.models.get_version("fraud@champion")
        assert (version.version, version.description) == (1, "from the YAML")
        run = project.tracking.get_run(version.run_id or "")
        assert run.experiment == "cli" and run.params["estimator.max_iter"] == "20"
        # the same inputs built in this process give the dataset the CLI's process built
        again = project.training.dataset(root / "labels.parquet", feature_service="svc",
                                         label="is_fraud", name="fraud")
        assert again.id == version.dataset_id
        assert again.read_bytes() == project.training.get_dataset(again.id).read_bytes()


def test_import_and_load_by_alias_stay_lean(trained: tuple[Path, str]) -> None:
    """`import shipyard`, reading the registry and loading a model by alias never import the
    offline engine, Alembic or the training layer; only unpickling a scikit-learn model may
    bring pandas and Arrow (a regression guard for the cold-load time)."""
    root, _ = trained
    script = textwrap.dedent(f"""
        import json, sys
        heavy = lambda: sorted(m for m in {HEAVY!r} if m in sys.modules)
        import shipyard
        seen = [heavy()]
        project = shipyard.Project.load({str(root)!r})
        seen.append([heavy(), project.models.get_version("fraud@champion").ref])
        seen.append([heavy(), project.models.load("fraud@champion").version.ref])
        print(json.dumps(seen))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    after_import, (after_lookup, ref), (after_load, loaded) = json.loads(done.stdout)
    assert after_import == [] and after_lookup == [] and ref == loaded == "fraud/1"
    assert [m for m in after_load if m not in ("pandas", "pyarrow")] == []


def test_a_bad_config_is_one_line_and_exit_code_2(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "train.yaml"
    bad.write_text(CONFIG.replace("label: is_fraud", "labels_column: is_fraud"))
    for path, message in ((tmp_path / "missing.yaml", "does not exist"),
                          (bad, "'label' is invalid: Field required")):
        with pytest.raises(SystemExit) as exit_info:
            cli(["train", str(path), "--project", str(tmp_path)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) <= 2
