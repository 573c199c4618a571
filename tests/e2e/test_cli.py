"""The command line, run as users run it: a subprocess, its output and its exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
DEFINITIONS = """
import shipyard as sy
customer = sy.Entity("customer", join_keys=["customer_id"])
stats = sy.FeatureView(name="stats", entities=[customer], schema=[sy.Field("value", sy.FIELD)],
                       source=sy.FileSource("stats.parquet"))
"""


def shipyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHIPYARD, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    result = shipyard("init", "shop", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "shop"
    pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")],
                  "value": [1.5]}).to_parquet(root / "stats.parquet")
    (root / "features.py").write_text(DEFINITIONS.replace("FIELD", "Float64"))
    return root


def test_init_apply_plan_versions_and_diff(root: Path) -> None:
    assert "project: shop" in (root / "shipyard.yaml").read_text()
    plan = shipyard("apply", "--plan", cwd=root)
    assert plan.returncode == 0 and "2 to add" in plan.stdout and "nothing stored" in plan.stdout
    applied = shipyard("apply", cwd=root)
    assert "Applied as version 1" in applied.stdout
    assert "No changes" in shipyard("apply", cwd=root).stdout
    (root / "features.py").write_text(DEFINITIONS.replace("FIELD", "Float32"))
    assert "Applied as version 2" in shipyard("apply", "-p", str(root), cwd=root.parent).stdout
    listing = shipyard("versions", "list", cwd=root)
    assert listing.returncode == 0 and "+2 ~0 -0" in listing.stdout and "+0 ~1 -0" in listing.stdout
    diff = shipyard("versions", "diff", "1", "2", cwd=root)
    assert "~ feature view stats" in diff.stdout and "Float64" in diff.stdout


def test_errors_are_one_line_and_a_non_zero_exit(root: Path) -> None:
    (root / "features.py").write_text(DEFINITIONS.replace("FIELD", "Int64"))
    result = shipyard("apply", cwd=root)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: 1 problem(s) in the definitions")
    assert "declared Int64 but the source column has type DOUBLE" in result.stderr
    missing = shipyard("apply", cwd=root.parent)
    assert missing.returncode == 2 and "No shipyard.yaml" in missing.stderr
    unknown = shipyard("versions", "diff", "1", "7", cwd=root)
    assert unknown.returncode == 1 and "error:" in unknown.stderr
    usage = shipyard("versions", "diff", "one", cwd=root)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_debug_shows_the_traceback(root: Path) -> None:
    result = shipyard("--debug", "apply", cwd=root.parent)
    assert result.returncode != 0 and "Traceback" in result.stderr
