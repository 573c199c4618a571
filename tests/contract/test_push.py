"""Push on SQLite and Redis: validation, newer-wins online, durable offline history."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shipyard as sy
from tests.conftest import ProjectFactory
from tests.contract._online import DEFINITIONS, NOW, H, online, stats_frame, write_sources


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """Pushes do not depend on the metadata database: SQLite only."""
    return f"sqlite:///{tmp_path / 'meta' / 'metadata.db'}"


def pushed_files(project: sy.Project) -> list[Path]:
    return sorted((project.root / "stats.parquet.pushed").glob("*"))


def historical(project: sy.Project, key: int, at: pd.Timestamp,
               features: tuple[str, ...] = ("value",)) -> pd.DataFrame:
    entity_df = pd.DataFrame({"customer_id": [key], "event_timestamp": [at]})
    return project.features.get_historical_features(entity_df,
                                                    features=[f"stats:{f}" for f in features])


def test_pushed_rows_are_served_online_at_once(online_project: sy.Project) -> None:
    assert online_project.features.push("stats_push",
                                        stats_frame([(7, NOW - H, 7.5), (8, NOW - H, 8.0)])) == 2
    out = online(online_project, ["stats:value", "stats:tags", "stats:seen"],
                 [{"customer_id": 7}, {"customer_id": 8}])
    assert out["value"] == [7.5, 8.0] and out["tags"] == [[7, 8], [8, 9]]
    assert out["seen"] == [(NOW - H).to_pydatetime()] * 2


def test_pushed_rows_reach_the_offline_history(online_project: sy.Project) -> None:
    online_project.features.push("stats_push", stats_frame([(1, NOW - H / 2, 5.0)]))
    assert historical(online_project, 1, NOW)["value"].tolist() == [5.0]
    assert historical(online_project, 1, NOW - 3 * H / 4)["value"].tolist() == [1.0]  # batch row
    [part] = pushed_files(online_project)
    assert part.name.startswith("part-") and part.suffix == ".parquet"
    online_project.features.push("stats_push", stats_frame([(1, NOW - H / 4, 6.0)]))
    assert len(pushed_files(online_project)) == 2
    frame = historical(online_project, 1, NOW, ("value", "tags", "seen", "small"))
    assert frame["value"].tolist() == [6.0] and list(frame["tags"][0]) == [6, 7]
    assert frame["small"].tolist() == [6]


def test_an_older_push_does_not_overwrite_online_but_is_kept_offline(
        online_project: sy.Project) -> None:
    online_project.features.materialize(None, NOW)
    online_project.features.push("stats_push", stats_frame([(1, NOW - 3 * H / 2, 9.0)]))
    assert online(online_project, ["stats:value"], [{"customer_id": 1}])["value"] == [1.0]
    assert historical(online_project, 1, NOW - 5 * H / 4)["value"].tolist() == [9.0]


def test_one_push_of_many_events_per_key_keeps_the_newest_of_each(
        online_project: sy.Project) -> None:
    # out of order; key 2 ties on event time (the later created wins, a missing one loses);
    # key 3 ties on both (the last given wins); all rows reach the offline history
    frame = stats_frame([(1, NOW - H / 4, 1.25), (2, NOW - H, 2.0), (1, NOW - H / 2, 1.5),
                         (3, NOW - H, 3.0), (2, NOW - H, 2.5), (2, NOW - H, 2.75),
                         (3, NOW - H, 3.5), (1, NOW - H, 1.0)])
    frame["created"] = pd.Series([NOW, NOW, NOW, NOW, NOW + H, pd.NaT, NOW, NOW],
                                 dtype="datetime64[ns, UTC]")
    assert online_project.features.push("stats_push", frame) == 8
    out = online(online_project, ["stats:value", "stats:name"],
                 [{"customer_id": k} for k in (3, 2, 1)])
    assert out == {"customer_id": [3, 2, 1], "value": [3.5, 2.5, 1.25],
                   "name": ["v3.5", "v2.5", "v1.25"]}
    assert pq.read_table(pushed_files(online_project)[0]).num_rows == 8
    # a later push with an older event for key 1 changes nothing online
    online_project.features.push("stats_push", stats_frame([(1, NOW - H / 3, 9.0)] * 2))
    assert online(online_project, ["stats:value"], [{"customer_id": 1}])["value"] == [1.25]


def test_pushed_nulls_and_typed_values_round_trip(online_project: sy.Project) -> None:
    frame = stats_frame([(11, NOW - H, 2.0), (12, NOW - H, 3.0)])
    for column in ("value", "count", "flag", "seen", "small", "single", "name", "tags"):
        frame[column] = frame[column].astype(object)
        frame.loc[1, column] = None  # key 12: every feature missing but `scores`
    online_project.features.push("stats_push", frame)
    out = online(online_project, [f"stats:{f}" for f in
                                  ("value", "count", "name", "flag", "tags", "scores", "seen",
                                   "small", "single")],
                 [{"customer_id": 11}, {"customer_id": 12}])
    assert out == {"customer_id": [11, 12], "value": [2.0, None], "count": [2, None],
                   "name": ["v2", None], "flag": [True, None], "tags": [[2, 3], None],
                   "scores": [[1.0], [1.5]], "seen": [(NOW - H).to_pydatetime(), None],
                   "small": [2, None], "single": [2.0, None]}
    assert [type(v) for v in out["count"][:1] + out["small"][:1] + out["value"][:1]] == [
        int, int, float]


def test_a_missing_created_time_is_the_push_time(online_project: sy.Project) -> None:
    # same event time as the batch row: the push, created later, wins online and offline
    pushed = stats_frame([(1, NOW - H, 4.0)]).drop(columns=["created"])
    online_project.features.materialize(None, NOW)
    online_project.features.push("stats_push", pushed)
    assert online(online_project, ["stats:value"], [{"customer_id": 1}])["value"] == [4.0]
    assert historical(online_project, 1, NOW)["value"].tolist() == [4.0]
    stored = pq.read_table(pushed_files(online_project)[0])
    assert stored.column("created")[0].as_py() >= NOW.to_pydatetime()


def test_naive_timestamps_are_utc(online_project: sy.Project) -> None:
    frame = stats_frame([(5, NOW - H, 5.0)])
    for column in ("event_timestamp", "created", "seen"):
        frame[column] = frame[column].dt.tz_localize(None)
    online_project.features.push("stats_push", frame)
    out = online(online_project, ["stats:value", "stats:seen"], [{"customer_id": 5}])
    assert out["seen"] == [(NOW - H).to_pydatetime()] and out["value"] == [5.0]
    assert historical(online_project, 5, NOW - H)["value"].tolist() == [5.0]


def test_lists_of_dicts_and_arrow_tables_are_accepted(online_project: sy.Project) -> None:
    frame = stats_frame([(5, NOW - H, 5.0), (6, NOW - H, 6.0)])
    online_project.features.push("stats_push", frame.iloc[:1].to_dict("records"))
    online_project.features.push("stats_push", pa.Table.from_pandas(frame.iloc[1:],
                                                                    preserve_index=False))
    assert online(online_project, ["stats:value"],
                  [{"customer_id": 5}, {"customer_id": 6}])["value"] == [5.0, 6.0]
    assert online_project.features.push("stats_push", frame.iloc[:0]) == 0


def test_an_unknown_push_source_is_not_found(online_project: sy.Project) -> None:
    with pytest.raises(sy.NotFoundError, match=r"'nope' feeds no.*\['stats_push'\]"):
        online_project.features.push("nope", stats_frame([(1, NOW, 1.0)]))


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["value", "tags"]), r"lack columns \['value', 'tags'\]"),
    (lambda f: f.drop(columns=["event_timestamp"]), r"lack columns \['event_timestamp'\] "
                                                    r"\(the event time\)"),
    (lambda f: f.assign(value="high"), r"'value' pushed to 'stats_push' has type "
                                       r"(large_)?string; feature view 'stats' declares it "
                                       "Float64"),
    (lambda f: f.assign(count=1.5), "'count' .* has type double; .* declares it Int64"),
    (lambda f: f.assign(small=2**40), "'small' .* does not fit Int32"),
    (lambda f: f.assign(flag=1), "'flag' .* declares it Bool"),
    (lambda f: f.assign(tags=[["a"]]), r"'tags' .* declares it Array\(Int64\)"),
    (lambda f: f.assign(customer_id="1"), "Join key 'customer_id' .* keys are int"),
    (lambda f: f.assign(customer_id=None), "Join key 'customer_id' .* 1 missing values"),
    (lambda f: f.assign(event_timestamp=pd.NaT), "1 missing timestamps"),
    (lambda f: f.assign(event_timestamp="2026-01-01"), "'event_timestamp' .* not timestamps"),
    (lambda f: f.assign(value=[object()]), "mixed or unsupported values"),
])
def test_bad_rows_are_rejected_and_nothing_is_written(online_project: sy.Project,
                                                      change: object, message: str) -> None:
    frame = change(stats_frame([(3, NOW - H, 3.0)]))  # type: ignore[operator]
    with pytest.raises(sy.InvalidInputError, match=message):
        online_project.features.push("stats_push", frame)
    assert pushed_files(online_project) == []
    assert online(online_project, ["stats:value"], [{"customer_id": 3}])["value"] == [None]


def test_push_input_must_be_tabular(online_project: sy.Project) -> None:
    with pytest.raises(sy.InvalidInputError, match="are a str.*Push a pandas DataFrame"):
        online_project.features.push("stats_push", "rows")


def test_field_mapping_renames_columns_offline(make_project: ProjectFactory,
                                               online_config: str) -> None:
    definitions = DEFINITIONS + """
mapped = sy.FeatureView(
    name="mapped", entities=[customer], source=sy.PushSource("mapped_push",
        batch_source=sy.FileSource("mapped.parquet", field_mapping={"cnt": "count_renamed"})),
    schema=[sy.Field("count_renamed", sy.Int64)])
"""
    root = make_project(definitions, extra_config=online_config)
    write_sources(root)
    pd.DataFrame({"customer_id": [1], "event_timestamp": [NOW - H], "cnt": [1]}).to_parquet(
        root / "mapped.parquet")
    with sy.Project.load(root) as project:
        project.apply()
        project.features.push("mapped_push", pd.DataFrame({
            "customer_id": [4], "event_timestamp": [NOW - H], "count_renamed": [44]}))
        assert online(project, ["mapped:count_renamed"], [{"customer_id": 4}]) == {
            "customer_id": [4], "count_renamed": [44]}
        [part] = (root / "mapped.parquet.pushed").glob("*.parquet")
        assert pq.read_table(part).column_names == ["customer_id", "event_timestamp", "cnt"]
        entity_df = pd.DataFrame({"customer_id": [4, 1], "event_timestamp": [NOW, NOW]})
        frame = project.features.get_historical_features(entity_df,
                                                         features=["mapped:count_renamed"])
        assert frame["count_renamed"].tolist() == [44, 1]


def test_two_push_sources_may_not_share_a_batch_file(make_project: ProjectFactory) -> None:
    definitions = DEFINITIONS + """
other = sy.FeatureView(
    name="other", entities=[customer], schema=[sy.Field("value", sy.Float64)],
    source=sy.PushSource("other_push", batch_source=sy.FileSource("stats.parquet")))
"""
    root = make_project(definitions)
    write_sources(root)
    with sy.Project.load(root) as project, pytest.raises(
            sy.DefinitionError, match="Push sources 'other_push' and 'stats_push' share"):
        project.apply()
