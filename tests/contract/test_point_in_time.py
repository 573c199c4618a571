"""Every rule of the point-in-time join (DESIGN.md), on SQLite and PostgreSQL metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from tests.conftest import ProjectFactory

T0 = pd.Timestamp("2026-03-01 12:00", tz="UTC")
H = pd.Timedelta(hours=1)

DEFINITIONS = """
from datetime import timedelta
import shipyard as sy
customer = sy.Entity("customer", join_keys=["customer_id"])
pair = sy.Entity("pair", join_keys=["customer_id", "merchant_id"])
stats = sy.FeatureView(
    name="stats", entities=[customer], ttl=timedelta(hours=TTL_HOURS),
    schema=[sy.Field("value", sy.Float64), sy.Field("count", sy.Int64)],
    source=sy.FileSource("stats.parquet", created_timestamp_field="created"))
pair_stats = sy.FeatureView(
    name="pair_stats", entities=[pair], ttl=None,
    schema=[sy.Field("pair_value", sy.Int64)],
    source=sy.FileSource("pairs.parquet"))
"""


def feature_rows(rows: list[tuple[int, pd.Timestamp, pd.Timestamp, float]]) -> pd.DataFrame:
    """(customer_id, event time, created time, value) rows; count is the value as an int."""
    frame = pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "created", "value"])
    frame["count"] = frame["value"].astype("int64")
    return frame


@pytest.fixture
def project(make_project: ProjectFactory) -> sy.Project:
    """A project with a 2-hour-ttl view (customer) and a no-ttl view (customer, merchant)."""
    root = make_project(DEFINITIONS.replace("TTL_HOURS", "2"))
    feature_rows([(1, T0, T0, 1.0)]).to_parquet(root / "stats.parquet")
    pd.DataFrame({"customer_id": [1], "merchant_id": [9], "event_timestamp": [T0],
                  "pair_value": [5]}).to_parquet(root / "pairs.parquet")
    proj = sy.Project.load(root)
    proj.apply()
    yield proj
    proj.close()


def write_stats(project: sy.Project, rows: list[tuple[int, pd.Timestamp, pd.Timestamp, float]]
                ) -> None:
    feature_rows(rows).to_parquet(project.root / "stats.parquet")


def values(project: sy.Project, entities: pd.DataFrame, **options: object) -> list[object]:
    out = project.features.get_historical_features(entities, features=["stats:value"],
                                                   **options)
    return [None if pd.isna(v) else v for v in out["value"]]


def entities(*rows: tuple[int, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "event_timestamp"])


def test_row_at_exactly_the_entity_timestamp_is_used(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0), (1, T0 + H, T0 + H, 2.0)])
    assert values(project, entities((1, T0 + H))) == [2.0]


def test_row_after_the_entity_timestamp_is_never_used(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0), (1, T0 + H, T0 + H, 2.0)])
    assert values(project, entities((1, T0 + H - pd.Timedelta(microseconds=1)))) == [1.0]


def test_latest_row_before_the_timestamp_wins(project: sy.Project) -> None:
    write_stats(project, [(1, T0 - 3 * H / 2, T0, 1.0), (1, T0 - H, T0, 2.0),
                          (1, T0 - H / 2, T0, 3.0)])
    assert values(project, entities((1, T0))) == [3.0]


def test_row_exactly_at_ttl_is_inside_the_window(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0)])
    assert values(project, entities((1, T0 + 2 * H))) == [1.0]


def test_row_just_past_ttl_is_null_without_falling_back(project: sy.Project) -> None:
    write_stats(project, [(1, T0 - 5 * H, T0, 7.0), (1, T0, T0, 1.0)])
    late = T0 + 2 * H + pd.Timedelta(microseconds=1)
    assert values(project, entities((1, late))) == [None]


def test_before_the_first_row_is_null(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0)])
    assert values(project, entities((1, T0 - pd.Timedelta(seconds=1)))) == [None]


def test_unknown_entity_is_null_and_row_is_kept(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0)])
    out = project.features.get_historical_features(entities((42, T0), (1, T0)),
                                                   features=["stats:value", "stats:count"])
    assert list(out["customer_id"]) == [42, 1]
    assert pd.isna(out["value"][0]) and out["value"][1] == 1.0
    assert out["count"].dtype == "Int64" and out["count"][1] == 1 and pd.isna(out["count"][0])


def test_ties_on_event_time_go_to_the_latest_created(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0 + 2 * H, 2.0), (1, T0, T0 + 5 * H, 3.0),
                          (1, T0, T0 + H, 1.0)])
    assert values(project, entities((1, T0 + H))) == [3.0]


def test_a_missing_created_timestamp_loses_ties(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0 + H, 2.0), (1, T0, pd.NaT, 9.0)])
    assert values(project, entities((1, T0 + H))) == [2.0]


def test_duplicate_entity_rows_are_all_kept_in_order(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0), (2, T0, T0, 2.0)])
    frame = entities((2, T0), (1, T0), (2, T0), (1, T0 - H), (2, T0))
    frame["label"] = [10, 11, 12, 13, 14]
    out = project.features.get_historical_features(frame, features=["stats:value"])
    assert list(out["label"]) == [10, 11, 12, 13, 14]
    assert [None if pd.isna(v) else v for v in out["value"]] == [2.0, 1.0, 2.0, None, 2.0]
    assert list(out.columns) == ["customer_id", "event_timestamp", "label", "value"]


def test_original_index_and_columns_are_preserved(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0)])
    frame = entities((1, T0), (1, T0)).set_axis([7, 3])
    frame.insert(0, "note", ["a", "b"])
    out = project.features.get_historical_features(frame, features=["stats:value"])
    assert list(out.columns) == ["note", "customer_id", "event_timestamp", "value"]
    assert list(out["note"]) == ["a", "b"] and len(out) == 2


def test_composite_keys_match_on_every_key(project: sy.Project) -> None:
    pd.DataFrame({"customer_id": [1, 1, 2], "merchant_id": [9, 8, 9],
                  "event_timestamp": [T0, T0, T0],
                  "pair_value": [19, 18, 29]}).to_parquet(project.root / "pairs.parquet")
    frame = pd.DataFrame({"customer_id": [1, 1, 2, 2], "merchant_id": [9, 8, 9, 8],
                          "event_timestamp": [T0 + H] * 4})
    out = project.features.get_historical_features(frame, features=["pair_stats:pair_value"])
    assert out["pair_value"].tolist()[:3] == [19, 18, 29] and pd.isna(out["pair_value"][3])


def test_no_ttl_means_no_lower_bound(project: sy.Project) -> None:
    frame = pd.DataFrame({"customer_id": [1], "merchant_id": [9],
                          "event_timestamp": [T0 + pd.Timedelta(days=3650)]})
    out = project.features.get_historical_features(frame, features=["pair_stats:pair_value"])
    assert out["pair_value"].tolist() == [5]


def test_naive_entity_timestamps_are_utc(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0), (1, T0 + H, T0 + H, 2.0)])
    naive = entities((1, (T0 + H).tz_localize(None)))
    assert values(project, naive) == [2.0]


def test_other_time_zones_are_converted(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0), (1, T0 + H, T0 + H, 2.0)])
    # 14:30 in Berlin (UTC+1 in March) is 13:30 UTC: the 13:00 UTC row applies
    berlin = pd.Timestamp("2026-03-01 14:30", tz="Europe/Berlin")
    assert values(project, entities((1, berlin))) == [2.0]
    # 13:30 in New York is 18:30 UTC: past the 2 h ttl of the 13:00 row
    new_york = pd.Timestamp("2026-03-01 13:30", tz="America/New_York")
    assert values(project, entities((1, new_york))) == [None]


def test_source_timestamps_in_another_zone_are_compared_in_utc(project: sy.Project) -> None:
    tokyo = (T0 + H).tz_convert("Asia/Tokyo")
    frame = feature_rows([(1, T0, T0, 1.0)])
    later = feature_rows([(1, T0, T0, 2.0)])
    later["event_timestamp"] = later["created"] = tokyo
    pd.concat([frame.astype({"event_timestamp": later["event_timestamp"].dtype,
                             "created": later["created"].dtype}), later]
              ).to_parquet(project.root / "stats.parquet")
    assert values(project, entities((1, T0 + H))) == [2.0]
    assert values(project, entities((1, T0 + H / 2))) == [1.0]


def test_mixed_naive_and_aware_timestamps_are_an_error(project: sy.Project) -> None:
    frame = pd.DataFrame({"customer_id": [1, 1],
                          "event_timestamp": pd.Series([datetime(2026, 3, 1),
                                                        datetime(2026, 3, 1, tzinfo=UTC)],
                                                       dtype=object)})
    with pytest.raises(sy.InvalidInputError, match="mixes naive and timezone-aware"):
        values(project, frame)


def test_filter_by_created_timestamp_hides_late_backfills(project: sy.Project) -> None:
    # the 13:00 row was only written at 20:00: at 14:00 it was not known yet
    write_stats(project, [(1, T0, T0, 1.0), (1, T0 + H, T0 + 8 * H, 2.0)])
    frame = entities((1, T0 + 2 * H), (1, T0 + 9 * H))
    assert values(project, frame) == [2.0, None]
    assert values(project, frame, filter_by_created_timestamp=True) == [1.0, None]
    frame = entities((1, T0 + 8 * H))
    assert values(project, frame, filter_by_created_timestamp=True) == [None]  # 13:00 + 2 h ttl


def test_filter_by_created_timestamp_prefers_latest_event_among_known(project: sy.Project
                                                                       ) -> None:
    # both known at 14:00; the later event time wins even though it was created earlier
    write_stats(project, [(1, T0, T0 + H + H / 2, 1.0), (1, T0 + H, T0 + H, 2.0)])
    assert values(project, entities((1, T0 + 2 * H)), filter_by_created_timestamp=True) == [2.0]


def test_full_feature_names_and_clashing_short_names(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0)])
    out = project.features.get_historical_features(entities((1, T0)), features=["stats:value"],
                                                   full_feature_names=True)
    assert list(out.columns)[-1] == "stats__value"


def test_retrieval_without_entity_frame_returns_every_feature_row(project: sy.Project) -> None:
    write_stats(project, [(1, T0, T0, 1.0), (2, T0 + H, T0 + H, 2.0), (1, T0 + 5 * H, T0, 3.0),
                          (1, T0 + 9 * H, T0, 4.0)])
    out = project.features.get_historical_features(features=["stats:value"], start=T0,
                                                   end=T0 + 5 * H)
    assert out["customer_id"].tolist() == [1, 2, 1]
    assert out["value"].tolist() == [1.0, 2.0, 3.0]
    assert str(out["event_timestamp"].dt.tz) == "UTC"


def test_parquet_path_as_entity_frame(project: sy.Project, tmp_path: Path) -> None:
    write_stats(project, [(1, T0, T0, 1.0)])
    entities((1, T0)).to_parquet(tmp_path / "e.parquet")
    out = project.features.get_historical_features(str(tmp_path / "e.parquet"),
                                                   features=["stats:value"])
    assert out["value"].tolist() == [1.0]


def brute_force(feats: pd.DataFrame, ents: pd.DataFrame, ttl: pd.Timedelta,
                by_created: bool) -> list[set[float | None]]:
    """The rule of DESIGN.md, one entity row at a time: the acceptable values of each row.

    Rows equal in keys, event and created time are true duplicates; any of them may win.
    """
    out: list[set[float | None]] = []
    for key, ts in zip(ents["customer_id"], ents["event_timestamp"], strict=True):
        rows = feats[(feats.customer_id == key) & (feats.event_timestamp <= ts)
                     & (feats.event_timestamp >= ts - ttl)]
        if by_created:
            rows = rows[rows.created <= ts]
        if rows.empty:
            out.append({None})
            continue
        best = rows.sort_values(["event_timestamp", "created"]).iloc[-1]
        ties = rows[(rows.event_timestamp == best.event_timestamp)
                    & (rows.created == best.created)]
        out.append(set(ties.value.astype(float)))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("by_created", [False, True])
def test_matches_a_brute_force_reference_on_random_data(project: sy.Project, seed: int,
                                                        by_created: bool) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    # coarse times so that ties in event and created time happen often
    event = T0 + pd.to_timedelta(rng.integers(0, 48, n) * 30, unit="min")
    created = event + pd.to_timedelta(rng.integers(0, 8, n) * 30, unit="min")
    feats = pd.DataFrame({"customer_id": rng.integers(0, 12, n), "event_timestamp": event,
                          "created": created, "value": np.arange(n, dtype=float)})
    feats["count"] = feats["value"].astype("int64")
    feats.to_parquet(project.root / "stats.parquet")
    ents = pd.DataFrame({"customer_id": rng.integers(0, 13, 300),
                         "event_timestamp": T0 + pd.to_timedelta(rng.integers(-2, 52, 300) * 30,
                                                                 unit="min")})
    expected = brute_force(feats, ents, 2 * H, by_created)
    got = values(project, ents, filter_by_created_timestamp=by_created)
    wrong = [(i, g, e) for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g not in e]
    assert not wrong
    assert sum(len(e) > 1 for e in expected) < len(expected) / 10  # ties are the exception
