"""`shipyard monitor run|report|labels` as users run them: subprocesses, output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.unit.monitoring.monitored import DAY0, build, monitoring_yaml

RULES = """\
    - {metric: drift, column: x2, window: 1d, min_rows: 100, severity: critical}
    - {metric: missing_share, column: "*", window: 1d, threshold: 0.5}
"""


def shipyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipyard.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory,
         inbox: tuple[str, list[dict[str, Any]]]) -> Path:
    root = tmp_path_factory.mktemp("monitor") / "shop"
    root.mkdir()
    (root / "shipyard.yaml").write_text("project: shop\n" + monitoring_yaml(RULES, inbox[0]))
    project, _ = build(root)
    project.close()
    return root


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def test_monitor_run_fires_once_posts_and_writes_gauges(
        root: Path, inbox: tuple[str, list[dict[str, Any]]]) -> None:
    at = (DAY0 + timedelta(days=3)).isoformat()
    first = shipyard("monitor", "run", "--at", at, "--metrics-file", "gauges.prom", cwd=root)
    assert first.returncode == 0, first.stderr
    assert "[critical] fraud: drift of 'x2' = " in first.stdout
    assert "(webhook: 200)" in first.stdout and "1 new event(s)" in first.stdout
    assert [e["event"]["column"] for e in inbox[1]] == ["x2"]
    gauges = (root / "gauges.prom").read_text()
    assert 'shipyard_monitoring_alert_firing{column="x2",model="fraud",rule="drift:x2",' \
           'severity="critical"} 1.0' in gauges
    assert 'shipyard_monitoring_window_rows{kind="predictions",model="fraud",window="1d"} 960.0' \
        in gauges
    second = shipyard("monitor", "run", "--at", at, "--fail-on-alert", cwd=root)
    assert second.returncode == 3 and "0 new event(s)" in second.stdout
    assert len(inbox[1]) == 1  # still firing: not posted again


def test_monitor_run_every_serves_the_gauges_over_http(root: Path) -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "monitor", "run", "--at",
         (DAY0 + timedelta(days=3)).isoformat(), "--every", "3600", "--metrics-port", str(port)],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"})
    try:
        deadline, text = time.monotonic() + 90, ""
        while "shipyard_monitoring_alert_firing{" not in text:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no gauges served"
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
        assert 'rule="drift:x2",severity="critical"} 1.0' in text
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_monitor_report_writes_a_self_contained_file(root: Path) -> None:
    result = shipyard("monitor", "report", "--model", "fraud", "--from", DAY0.isoformat(),
                      "--to", (DAY0 + timedelta(days=3)).isoformat(), "--out", "out/report.html",
                      cwd=root)
    assert result.returncode == 0, result.stderr
    page = (root / "out" / "report.html").read_text()
    assert "<script src=" not in page and "Monitoring report: fraud/1" in page


def test_monitor_labels_logs_a_file(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pd.DataFrame({"request_id": ["req-1", "req-2"], "y": [1, 0]}).to_csv(root / "l.csv",
                                                                         index=False)
    code, out, _ = _in_process(("monitor", "labels", "l.csv", "--label", "y"), root, capsys)
    assert code == 0 and "2 labels logged." in out


def _in_process(args: tuple[str, ...], root: Path, capsys: pytest.CaptureFixture[str]
                ) -> tuple[int, str, str]:
    """The CLI entry point in this process (no interpreter start-up): exit code, out, err."""
    import os

    from shipyard.cli.main import run

    before = Path.cwd()
    os.chdir(root)
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        os.chdir(before)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("args", "message"), [
    (("monitor", "report", "--to", "2026-10-02"), "Give the period with --from and --to."),
    (("monitor", "run", "--at", "someday"), "--at 'someday' is not a time."),
    (("monitor", "report", "--model", "nosuch", "--from", "2026-10-01", "--to", "2026-10-02"),
     "nosuch"),
    (("monitor", "report", "--from", "2026-10-01", "--to", "2026-10-02", "--step", "2x"),
     "Window '2x' is not a duration."),
    (("monitor", "labels", "missing.csv"), "No file 'missing.csv'."),
    (("monitor", "run", "--metrics-port", "9999"), "--metrics-port needs --every"),
])
def test_monitor_errors_are_one_line(root: Path, args: tuple[str, ...], message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _in_process(args, root, capsys)
    lines = err.strip().splitlines()
    assert code != 0 and out == "" and len(lines) == 1 and lines[0].startswith("error:"), err
    assert message in lines[0]


def test_monitor_run_without_rules_says_how_to_add_them(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: empty\n")
    line = _error_line(shipyard("monitor", "run", cwd=tmp_path))
    assert "No alert rules" in line and "metric: drift" in line
