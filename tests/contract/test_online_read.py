"""get_online_features on SQLite and Redis: types, ttl, nulls, errors, on-demand parity."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

import shipyard as sy
from shipyard.features.skew import same_value
from tests.contract._online import (
    DEFINITIONS,
    NOW,
    STATS_FEATURES,
    H,
    online,
    stats_frame,
    write_stats,
)

ALL_STATS = [f"stats:{f}" for f in STATS_FEATURES]


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """Online reads do not depend on the metadata database: SQLite only."""
    return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"


def materialized(project: sy.Project) -> sy.Project:
    project.features.materialize(None, NOW)
    return project


def test_values_keep_their_types_after_materialization(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(1, NOW - H, 2.5), (2, NOW - H, 1.0)])
    out = online(materialized(online_project), ALL_STATS, [{"customer_id": 1}])
    assert out == {"customer_id": [1], "value": [2.5], "count": [2], "name": ["v2.5"],
                   "flag": [True], "tags": [[2, 3]], "scores": [[1.25]],
                   "seen": [(NOW - H).to_pydatetime()], "small": [2], "single": [2.5]}
    assert [type(v[0]) for v in out.values()] == [int, float, int, str, bool, list, list,
                                                  type((NOW - H).to_pydatetime()), int, float]


def test_online_equals_offline_point_in_time_for_now(online_project: sy.Project) -> None:
    frame = stats_frame([(1, NOW - H, 1.5), (2, NOW - 3 * H, 4.0), (3, NOW - H / 2, 3.25)])
    frame = frame.astype({"flag": object, "name": object, "tags": object})
    frame.loc[2, ["name", "flag", "tags"]] = None
    frame.loc[2, "seen"] = pd.NaT
    frame.to_parquet(online_project.root / "stats.parquet")
    rows = [{"customer_id": k} for k in (3, 2, 1, 9)]
    got = online(materialized(online_project), ALL_STATS, rows)
    entity_df = pd.DataFrame({"customer_id": [3, 2, 1, 9], "event_timestamp": NOW})
    want = online_project.features.get_historical_features(entity_df, features=ALL_STATS)
    for name in STATS_FEATURES:
        assert all(same_value(a, b) for a, b in zip(got[name], want[name], strict=True)), name
    assert got["value"] == [3.25, None, 1.5, None]  # 2: past the 2 h ttl; 9: unknown
    assert got["name"][0] is None and got["tags"][0] is None and got["seen"][0] is None


def test_a_value_older_than_the_ttl_reads_as_null(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(1, NOW - H, 1.0)])
    materialized(online_project)
    now = pd.Timestamp.now(tz="UTC")  # NOW is the session's start: too coarse here
    online_project.features.push("stats_push", stats_frame([(2, now - 2 * H - H / 60, 2.0),
                                                            (3, now - 2 * H + H / 60, 3.0)]))
    out = online(online_project, ["stats:value", "pairs:pair_value"],
                 [{"customer_id": k, "shop_code": "a"} for k in (1, 2, 3)])
    assert out["value"] == [1.0, None, 3.0]
    assert out["pair_value"] == [7, None, None]  # no ttl: 100 hours old is fine


def test_unknown_keys_and_empty_requests(online_project: sy.Project) -> None:
    materialized(online_project)
    assert online(online_project, ["stats:value"], [{"customer_id": 424242}]) == {
        "customer_id": [424242], "value": [None]}
    assert online(online_project, ["stats:value"], []) == {"customer_id": [], "value": []}
    assert online(online_project, ["stats:value"], [{"customer_id": None}])["value"] == [None]


def test_composite_keys_feature_services_and_full_names(online_project: sy.Project) -> None:
    materialized(online_project)
    rows = [{"customer_id": 1, "shop_code": "a", "amount": 5.0},
            {"customer_id": 1, "shop_code": "b", "amount": 5.0}]
    out = online_project.features.get_online_features(feature_service="svc", entity_rows=rows)
    assert out == {"customer_id": [1, 1], "shop_code": ["a", "b"], "value": [1.0, 1.0],
                   "name": ["v1", "v1"], "ratio": [5.0, 5.0], "pair_value": [7, None]}
    full = online(online_project, ["stats:value", "pairs:pair_value"], rows[:1],
                  full_feature_names=True)
    assert list(full) == ["customer_id", "shop_code", "stats__value", "pairs__pair_value"]


def test_many_entities_in_row_order_with_duplicates(online_project: sy.Project) -> None:
    write_stats(online_project.root, [(k, NOW - H, float(k)) for k in range(1, 1_001)])
    materialized(online_project)
    keys = [500, 1, 1, 1_000, 5_000, *range(1, 1_001)]
    out = online(online_project, ["stats:count"], [{"customer_id": k} for k in keys])
    assert out["count"] == [500, 1, 1, 1_000, None, *range(1, 1_001)]


@pytest.mark.parametrize("amounts", [[10.0, 250.0, 3.0]])
def test_on_demand_features_online_equal_offline(online_project: sy.Project,
                                                  amounts: list[float]) -> None:
    write_stats(online_project.root, [(1, NOW - H, 2.0), (2, NOW - H, 0.0)])
    materialized(online_project)
    rows = [{"customer_id": k, "amount": a} for k, a in zip((1, 2, 3), amounts, strict=True)]
    features = ["py_ratio:ratio", "py_ratio:big", "pd_scaled:scaled"]
    got = online(online_project, features, rows)
    entity_df = pd.DataFrame(rows).assign(event_timestamp=NOW)
    want = online_project.features.get_historical_features(entity_df, features=features)
    assert got["ratio"] == [5.0, None, None]
    assert [None if pd.isna(v) else v for v in want["ratio"]] == got["ratio"]
    assert got["big"] == [False, True, False] == want["big"].tolist()
    assert got["scaled"] == [20.0, 0.0, None]
    assert [None if pd.isna(v) else v for v in want["scaled"]] == got["scaled"]
    assert "amount" not in got  # request data is input, not output


def test_unknown_feature_or_view_is_not_found(online_project: sy.Project) -> None:
    with pytest.raises(sy.NotFoundError, match="View 'stats' has no feature 'nope'"):
        online(online_project, ["stats:nope"], [{"customer_id": 1}])
    with pytest.raises(sy.NotFoundError, match="Feature view 'ghost' is not defined"):
        online(online_project, ["ghost:x"], [{"customer_id": 1}])
    with pytest.raises(sy.NotFoundError, match="Feature service 'nope'"):
        online_project.features.get_online_features(feature_service="nope", entity_rows=[])


def test_missing_join_key_or_request_data_is_invalid_input(online_project: sy.Project) -> None:
    with pytest.raises(sy.InvalidInputError, match="Entity row 1 has no join key 'customer_id'"):
        online(online_project, ["stats:value"], [{"customer_id": 1}, {"customer": 2}])
    with pytest.raises(sy.InvalidInputError, match="no request data of 'py_ratio' 'amount'"):
        online(online_project, ["py_ratio:ratio"], [{"customer_id": 1}])


def test_wrongly_typed_keys_are_invalid_input(online_project: sy.Project) -> None:
    with pytest.raises(sy.InvalidInputError,
                       match=r"Join key 'customer_id' is '1' \(str\) in entity row 0; "
                             r"feature view 'stats' keys are int") as info:
        online(online_project, ["stats:value"], [{"customer_id": "1"}])
    assert info.value.hint == "Pass 'customer_id' as int."
    with pytest.raises(sy.InvalidInputError, match="'shop_code' is 3"):
        online(online_project, ["pairs:pair_value"], [{"customer_id": 1, "shop_code": 3}])
    with pytest.raises(sy.InvalidInputError, match="keys are int"):
        online(online_project, ["stats:value"], [{"customer_id": True}])
    import numpy as np  # numpy integers are fine

    materialized(online_project)
    assert online(online_project, ["stats:value"], [{"customer_id": np.int64(1)}])["value"] == [
        1.0]


@pytest.mark.parametrize("rows", [{"customer_id": 1}, "customer_id", [1, 2], None])
def test_entity_rows_must_be_a_list_of_dicts(online_project: sy.Project, rows: object) -> None:
    with pytest.raises(sy.InvalidInputError, match="dict"):
        online(online_project, ["stats:value"], rows)  # type: ignore[arg-type]


def test_bad_feature_arguments(online_project: sy.Project) -> None:
    with pytest.raises(sy.InvalidInputError, match="exactly one"):
        online_project.features.get_online_features(entity_rows=[])
    with pytest.raises(sy.InvalidInputError, match="not of the form 'view:feature'"):
        online(online_project, ["stats.value"], [])
    with pytest.raises(sy.InvalidInputError, match="not of the form"):
        online(online_project, [{"a": 1}], [])  # type: ignore[list-item]
    with pytest.raises(sy.InvalidInputError, match="online=False"):
        online(online_project, ["archive:old"], [{"customer_id": 1}])


def test_udf_errors_and_wrong_output_types_are_invalid_input(
        online_project_factory: object) -> None:
    broken = DEFINITIONS.replace('"big": [a > 100 for a in inputs["amount"]]',
                                 '"big": ["yes" for a in inputs["amount"]]')
    project = online_project_factory(definitions=broken)  # type: ignore[operator]
    with pytest.raises(sy.InvalidInputError, match="py_ratio:big is not of type Bool: got 'yes'"):
        online(project, ["py_ratio:big"], [{"customer_id": 1, "amount": 1.0}])
    materialized(project)
    with pytest.raises(sy.InvalidInputError, match="py_ratio' failed: TypeError"):
        online(project, ["py_ratio:ratio"], [{"customer_id": 1, "amount": "x"}])


def test_new_definitions_are_picked_up_after_apply(online_project: sy.Project) -> None:
    materialized(online_project)
    assert online(online_project, ["stats:value"], [{"customer_id": 1}])["value"] == [1.0]
    (online_project.root / "definitions.py").write_text(
        DEFINITIONS.replace("ttl=timedelta(hours=2)", "ttl=timedelta(minutes=30)"))
    reloaded = sy.Project.load(online_project.root)
    reloaded.apply()
    online_project.features.online_reader.refresh()
    assert online(online_project, ["stats:value"], [{"customer_id": 1}])["value"] == [None]
    reloaded.close()


def test_catalog_is_cached_between_reads(online_project: sy.Project,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    online(online_project, ["stats:value"], [{"customer_id": 1}])
    calls: list[int] = []
    registry = online_project.features.registry
    original = registry.latest_version
    monkeypatch.setattr(registry, "latest_version", lambda: calls.append(1) or original())
    for _ in range(50):
        online(online_project, ["stats:value"], [{"customer_id": 1}])
    assert len(calls) <= 1
    assert online_project.features.online_reader.recheck_seconds == timedelta(seconds=1
                                                                              ).total_seconds()
