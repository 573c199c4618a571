"""Alert rules: verdicts, de-duplication in the metadata store, the webhook, Prometheus gauges."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard.core.errors import ConfigError
from shipyard.metadata.db import Database
from shipyard.monitoring import build_profile, classification_metrics, data_quality, drift_from_profiles
from shipyard.monitoring.alerts import (
    AlertRule,
    AlertRun,
    Verdict,
    apply_verdicts,
    check_rules,
    judge,
    webhook_poster,
)
from shipyard.monitoring.gauges import MonitoringGauges
from shipyard.monitoring.profiles import Profile
from shipyard.monitoring.store import MonitoringStore
from shipyard.monitoring.windows import WindowReport

from .synthetic import SHIFTED, STABLE, make_window

AT = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def windows() -> tuple[Profile, WindowReport]:
    reference = build_profile(make_window(3_000, shifted=False, seed=11))
    current = build_profile(make_window(3_000, shifted=True, seed=12), reference=reference)
    realized = classification_metrics([0, 1, 0, 1] * 50, [0.2, 0.4, 0.6, 0.8] * 50)
    report = WindowReport(AT - timedelta(days=1), AT, current.n_rows, current,
                          drift_from_profiles(reference, current),
                          data_quality(reference, current), 200, realized, None)
    return reference, report


def test_a_drift_rule_fires_on_the_shifted_columns_only(windows: tuple[Profile, WindowReport]
                                                        ) -> None:
    reference, report = windows
    verdicts = judge(AlertRule("drift"), "fraud", report, reference, {}, {})
    firing = {v.column for v in verdicts if v.is_firing}
    assert firing == set(SHIFTED)
    assert {v.column for v in verdicts} == set(SHIFTED + STABLE)


def test_a_drift_rule_with_its_own_threshold_reruns_the_tests(windows: tuple[Profile, WindowReport]
                                                              ) -> None:
    reference, report = windows
    loose = judge(AlertRule("drift", column="mean_shift", threshold=5.0), "m", report, reference,
                  {}, {})
    assert [v.is_firing for v in loose] == [False] and loose[0].threshold == 5.0


def test_quality_and_dataset_rules(windows: tuple[Profile, WindowReport]) -> None:
    reference, report = windows
    nulls = judge(AlertRule("missing_share", column="with_nulls", threshold=0.05), "m", report,
                  reference, {}, {})
    assert nulls[0].is_firing and 0.05 < nulls[0].value < 0.2
    share = judge(AlertRule("share_drifted", threshold=0.3), "m", report, reference, {}, {})
    assert share[0].is_firing and share[0].value == pytest.approx(0.4)
    quiet = judge(AlertRule("share_drifted", min_rows=10_000), "m", report, reference, {}, {})
    assert not quiet[0].is_firing and "min_rows" in quiet[0].note


def test_performance_rules_default_to_the_value_at_training_time(
        windows: tuple[Profile, WindowReport]) -> None:
    reference, report = windows
    auc = report.performance.auc  # type: ignore[union-attr]
    fires = judge(AlertRule("auc"), "m", report, reference, {"validation_auc": auc + 0.1}, {})
    holds = judge(AlertRule("auc"), "m", report, reference, {"validation_auc": auc + 0.01}, {})
    assert fires[0].is_firing and fires[0].threshold == pytest.approx(auc + 0.05)
    assert not holds[0].is_firing
    few = judge(AlertRule("auc", threshold=0.99, min_rows=201), "m", report, reference, {}, {})
    assert not few[0].is_firing  # 200 labeled rows are too few to judge


def test_freshness_rules_read_each_view(windows: tuple[Profile, WindowReport]) -> None:
    reference, report = windows
    verdicts = judge(AlertRule("freshness_seconds", threshold=3_600), "m", report, reference, {},
                     {"customer_stats": 7_200.0, "merchant_stats": 60.0})
    assert {v.column: v.is_firing for v in verdicts} == {"customer_stats": True,
                                                         "merchant_stats": False}


def test_unknown_metrics_and_columns_are_config_errors(windows: tuple[Profile, WindowReport]
                                                       ) -> None:
    reference, report = windows
    with pytest.raises(ConfigError, match="unknown metric 'drfit'"):
        check_rules([AlertRule("drfit")])
    with pytest.raises(ConfigError, match="unknown column 'nope'"):
        judge(AlertRule("drift", column="nope"), "m", report, reference, {}, {})


def _verdict(firing: bool, value: float, column: str = "amount") -> Verdict:
    return Verdict(AlertRule("drift", severity="critical"), "fraud", column, value, 0.1, firing,
                   AT - timedelta(days=1), AT)


def test_a_condition_that_stays_true_fires_once_and_resolves_once(metadata_url: str) -> None:
    if metadata_url.startswith("sqlite:///"):
        Path(metadata_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    store = MonitoringStore(Database(metadata_url), "proj")
    fired = [apply_verdicts(store, [_verdict(True, 0.3 + i / 100), _verdict(False, 0.0, "age")],
                            AT + timedelta(hours=i)) for i in range(3)]
    assert [len(events) for events in fired] == [1, 0, 0]
    assert fired[0][0].status == "fired" and fired[0][0].column == "amount"
    assert store.read_states()[("drift:*", "fraud", "amount")].since == AT  # still since the first
    resolved = apply_verdicts(store, [_verdict(False, 0.02)], AT + timedelta(hours=5))
    again = apply_verdicts(store, [_verdict(True, 0.4)], AT + timedelta(hours=6))
    assert [e.status for e in resolved + again] == ["resolved", "fired"]
    events = store.list_events(model="fraud")
    assert [(e.status, e.value) for e in events] == [("fired", 0.3), ("resolved", 0.02),
                                                      ("fired", 0.4)]
    assert "[critical] fraud: drift of 'amount' = 0.3" in events[0].message
    assert store.list_events(model="other") == []


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on loopback that keeps the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers["content-length"])
            received.append({"content_type": self.headers["content-type"],
                             "body": json.loads(self.rfile.read(length))})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_events_are_posted_as_json_to_the_webhook(tmp_path: Any,
                                                  inbox: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = inbox
    store = MonitoringStore(Database(f"sqlite:///{tmp_path / 'm.db'}"), "proj")
    post = webhook_poster(url, "proj", timeout_seconds=5)
    apply_verdicts(store, [_verdict(True, 0.3)], AT, post=post)
    apply_verdicts(store, [_verdict(True, 0.35)], AT + timedelta(hours=1), post=post)  # no repeat
    apply_verdicts(store, [_verdict(False, 0.01)], AT + timedelta(hours=2), post=post)
    assert [r["body"]["event"]["status"] for r in received] == ["fired", "resolved"]
    first = received[0]
    assert first["content_type"] == "application/json" and first["body"]["project"] == "proj"
    assert first["body"]["event"] | {"id": 0} == {
        "id": 0, "rule": "drift:*", "model": "fraud", "column": "amount", "metric": "drift",
        "severity": "critical", "status": "fired", "value": 0.3, "threshold": 0.1,
        "window_start": (AT - timedelta(days=1)).isoformat(), "window_end": AT.isoformat(),
        "at": AT.isoformat(), "message": first["body"]["event"]["message"]}
    assert [e.webhook_status for e in store.list_events()] == ["200", "200"]


def test_an_unreachable_webhook_is_recorded_not_raised(tmp_path: Any) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = MonitoringStore(Database(f"sqlite:///{tmp_path / 'm.db'}"), "proj")
    events = apply_verdicts(store, [_verdict(True, 0.3)], AT,
                            post=webhook_poster(f"http://127.0.0.1:{port}/", "proj", 2))
    assert len(events) == 1
    assert store.list_events()[0].webhook_status.startswith("error:")


def test_current_values_become_prometheus_gauges(windows: tuple[Profile, WindowReport]) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    reference, report = windows
    verdicts = judge(AlertRule("drift", column="mean_shift"), "fraud", report, reference, {}, {})
    verdicts += judge(AlertRule("drift", column="normal"), "fraud", report, reference, {}, {})
    registry = CollectorRegistry()
    gauges = MonitoringGauges().register(registry)
    gauges.update(AlertRun(AT, verdicts, []), {("fraud", "1d"): report})
    text = generate_latest(registry).decode()
    statistic = report.drift.columns["mean_shift"].statistic
    assert (f'shipyard_monitoring_value{{column="mean_shift",metric="drift",model="fraud",'
            f'window="1d"}} {statistic}') in text
    assert ('shipyard_monitoring_alert_firing{column="mean_shift",model="fraud",'
            'rule="drift:mean_shift",severity="warning"} 1.0') in text
    assert ('shipyard_monitoring_alert_firing{column="normal",model="fraud",'
            'rule="drift:normal",severity="warning"} 0.0') in text
    assert 'shipyard_monitoring_window_rows{kind="labeled",model="fraud",window="1d"} 200.0' in text
    # the next evaluation replaces the series: a resolved rule reads 0, nothing is duplicated
    gauges.update(AlertRun(AT, [replace(verdicts[0], is_firing=False)], []), {})
    text = generate_latest(registry).decode()
    assert ('rule="drift:mean_shift",severity="warning"} 0.0') in text
    assert "normal" not in text and "window_rows{" not in text


def test_rules_differing_in_window_or_threshold_keep_their_own_state(tmp_path: Path) -> None:
    # regression: both were named `missing_share:amount` and shared one alert state
    store = MonitoringStore(Database(f"sqlite:///{tmp_path / 'm.db'}"), "proj")
    daily = AlertRule("missing_share", column="amount", window="1d", threshold=0.1)
    weekly = AlertRule("missing_share", column="amount", window="7d", threshold=0.1)
    stricter = AlertRule("missing_share", column="amount", threshold=0.2)
    assert len({daily.rule_name, weekly.rule_name, stricter.rule_name}) == 3
    check_rules([daily, weekly, stricter])
    for i in range(3):
        at = AT + timedelta(hours=i)
        apply_verdicts(store, [Verdict(daily, "fraud", "amount", 0.3, 0.1, True, at, at),
                               Verdict(weekly, "fraud", "amount", 0.05, 0.1, False, at, at),
                               Verdict(stricter, "fraud", "amount", 0.3, 0.2, True, at, at)], at)
    assert sorted(e.rule for e in store.list_events()) == sorted([daily.rule_name,
                                                                  stricter.rule_name])
    with pytest.raises(ConfigError, match="Two alert rules are named 'missing_share:amount"):
        check_rules([daily, replace(daily, severity="critical")])


def test_concurrent_evaluations_store_and_post_a_change_once(metadata_url: str) -> None:
    # regression: both read the states before either wrote them, so both fired (and posted)
    if metadata_url.startswith("sqlite:///"):
        Path(metadata_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    MonitoringStore(Database(metadata_url), "proj").read_states()  # migrated
    posted: list[int] = []
    for trial in range(4):
        at = AT + timedelta(hours=trial)
        firing = trial % 2 == 0  # fires, resolves, fires, resolves
        barrier = threading.Barrier(3)

        def evaluate(at: datetime = at, firing: bool = firing,
                     barrier: threading.Barrier = barrier) -> None:
            store = MonitoringStore(Database(metadata_url), "proj")
            barrier.wait()
            apply_verdicts(store, [_verdict(firing, 0.3)], at,
                           post=lambda e: posted.append(e.id) or "200")

        threads = [threading.Thread(target=evaluate) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    events = MonitoringStore(Database(metadata_url), "proj").list_events()
    assert [e.status for e in events] == ["fired", "resolved", "fired", "resolved"]
    assert sorted(posted) == [e.id for e in events]


def test_a_webhook_url_without_http_is_a_config_error(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    # regression: urlopen's ValueError escaped after the event was stored; the secret was logged
    from shipyard.settings import load_settings

    for bad in ("hooks.slack.com/services/T0/B0/SECRET", "ftp://host/SECRET", "http://[::1/x"):
        with pytest.raises(ConfigError, match="http:// or https://") as caught:
            webhook_poster(bad, "proj")
        assert "SECRET" not in str(caught.value)
    (tmp_path / "shipyard.yaml").write_text(
        "project: p\nmonitoring:\n  webhook_url: hooks.slack.com/services/T0/B0/SECRET\n")
    with pytest.raises(ConfigError, match="webhook_url"):
        load_settings(tmp_path)
    store = MonitoringStore(Database(f"sqlite:///{tmp_path / 'm.db'}"), "proj")
    post = webhook_poster("http://127.0.0.1:99999/services/SECRET", "proj", 2)  # bad port
    with caplog.at_level("WARNING"):
        apply_verdicts(store, [_verdict(True, 0.3)], AT, post=post)
    (event,) = store.list_events()
    assert event.webhook_status is not None and event.webhook_status.startswith("error:")
    assert "SECRET" not in caplog.text + event.webhook_status
    assert "http://127.0.0.1/..." in caplog.text
