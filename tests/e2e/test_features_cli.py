"""The online-feature commands: materialize, materialize-incremental, features get/check-skew."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.cli.main import run
from tests.conftest import ProjectFactory
from tests.contract._online import DEFINITIONS, NOW, H, stats_frame, write_sources
from tests.e2e._cli import run_cli


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """The commands are the same on any metadata database: SQLite only."""
    return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"


@pytest.fixture
def root(make_project: ProjectFactory) -> Path:
    """An applied project with the online-test definitions."""
    path = make_project(DEFINITIONS)
    write_sources(path)
    stats_frame([(1, NOW - H, 1.0), (2, NOW - H, 2.5)]).to_parquet(path / "stats.parquet")
    try:
        run(["apply", "-p", str(path)])
    except SystemExit as exc:
        assert not exc.code
    return path


shipyard = run_cli


def test_materialize_then_get(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = shipyard(capsys, "materialize", "2020-01-01", NOW.isoformat(), "--views",
                            "stats", "-p", str(root))
    assert code == 0 and "✓ stats: 2 keys from 2020-01-01" in out
    code, out, _ = shipyard(capsys, "features", "get", "-f", "stats:value", "-f",
                            "py_ratio:ratio", "-e", "customer_id=2,amount=5", "-e",
                            "customer_id=9,amount=1", "-p", str(root))
    assert code == 0
    lines = [line for line in out.splitlines() if "│" in line]
    assert [cell.strip() for cell in lines[0].split("│")[1:-1]] == ["2", "2.5", "2"]
    assert [cell.strip() for cell in lines[1].split("│")[1:-1]] == ["9", "null", "null"]


def test_materialize_incremental_and_check_skew(root: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = shipyard(capsys, "materialize-incremental", "now", "-p", str(root))
    assert code == 0 and "✓ stats: 2 keys from the beginning" in out
    code, out, _ = shipyard(capsys, "materialize-incremental", "now", "-p", str(root))
    assert code == 0 and "✓ stats: 0 keys from 20" in out
    code, out, _ = shipyard(capsys, "features", "check-skew", "--sample", "5", "-p", str(root))
    assert code == 0 and "stats:value" in out and "3 entities" in out


def test_skew_exits_non_zero(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = shipyard(capsys, "features", "check-skew", "-f", "stats:value", "-p",
                            str(root))
    assert code == 1 and "online None != offline 2.5" in out


def test_quoted_values_stay_strings(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shipyard(capsys, "materialize", "2020-01-01", "now", "-p", str(root))
    code, out, err = shipyard(capsys, "features", "get", "-f", "pairs:pair_value", "-e",
                              "customer_id=1,shop_code='a'", "-e", "customer_id=1,shop_code='7'",
                              "-p", str(root))
    assert code == 0, err
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()
            if "│" in line]
    assert rows == [["1", "a", "7"], ["1", "7", "null"]]


@pytest.mark.parametrize(("args", "message"), [
    (["features", "get", "-f", "stats:nope", "-e", "customer_id=1"],
     "error: View 'stats' has no feature 'nope'."),
    (["features", "get", "-f", "stats:value", "-e", "customer_id"],
     "error: Entity 'customer_id' is not of the form key=value"),
    (["features", "get", "-f", "stats:value", "-e", "customer_id=x"],
     "error: Join key 'customer_id' is 'x' (str)"),
    (["materialize", "tomorrow", "now"], "error: Cannot read 'tomorrow' as a timestamp."),
    (["materialize", "now", "2020-01-01"], "error: Materialization start"),
    (["materialize-incremental", "now", "--views", "ghost"],
     "error: Feature view 'ghost' is not defined."),
    (["serve-features", "--workers", "0"], "error: --workers must be at least 1, not 0."),
])
def test_errors_are_one_line_and_a_non_zero_exit(root: Path, capsys: pytest.CaptureFixture[str],
                                                 args: list[str], message: str) -> None:
    code, _, err = shipyard(capsys, *args, "-p", str(root))
    assert code != 0
    assert err.startswith(message) and len(err.strip().splitlines()) == 1, err
