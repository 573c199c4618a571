"""Run the CLI in-process, as the e2e tests do."""

from __future__ import annotations

import pytest

from shipyard.cli.main import run


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `shipyard ARGS` in this process; return (exit code, stdout, stderr) of this call."""
    capsys.readouterr()
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
