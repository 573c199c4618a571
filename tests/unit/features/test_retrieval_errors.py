"""Bad input to get_historical_features: a clear error naming the problem and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import shipyard as sy

T0 = pd.Timestamp("2026-03-01", tz="UTC")
DEFINITIONS = """
import pandas as pd
import shipyard as sy
customer = sy.Entity("customer", join_keys=["customer_id"])
shop = sy.Entity("shop", join_keys=["shop_id"])
stats = sy.FeatureView(name="stats", entities=[customer], schema=[sy.Field("value", sy.Float64)],
                       source=sy.FileSource("c.parquet"))
shops = sy.FeatureView(name="shops", entities=[shop], schema=[sy.Field("value", sy.Float64)],
                       source=sy.FileSource("s.parquet"))
req = sy.RequestSource("req", [sy.Field("amount", sy.Float64)])

@sy.on_demand_feature_view(sources=[stats, req], schema=[sy.Field("double", sy.Float64)])
def doubled(df):
    return pd.DataFrame({"double": df["amount"] * 2})

@sy.on_demand_feature_view(sources=[stats, req], schema=[sy.Field("bad", sy.Float64)])
def broken(df):
    return pd.DataFrame({"other": df["amount"]})
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> sy.Project:
    root: Path = tmp_path_factory.mktemp("proj")
    (root / "shipyard.yaml").write_text("project: p\n")
    (root / "defs.py").write_text(DEFINITIONS)
    pd.DataFrame({"customer_id": [1], "event_timestamp": [T0], "value": [1.0]}).to_parquet(
        root / "c.parquet")
    pd.DataFrame({"shop_id": [1], "event_timestamp": [T0], "value": [2.0]}).to_parquet(
        root / "s.parquet")
    proj = sy.Project.load(root)
    proj.apply()
    return proj


def ents(**columns: object) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [1], "event_timestamp": [T0], **columns})


CASES = {
    "missing join key": (dict(entity_df=ents().drop(columns="customer_id"),
                              features=["stats:value"]),
                         sy.InvalidInputError, "no join key column 'customer_id'"),
    "missing timestamp": (dict(entity_df=ents().drop(columns="event_timestamp"),
                               features=["stats:value"]),
                          sy.InvalidInputError, "no 'event_timestamp' column"),
    "string timestamps": (dict(entity_df=ents().assign(event_timestamp="2026-03-01"),
                               features=["stats:value"]),
                          sy.InvalidInputError, "not timestamps"),
    "integer timestamps": (dict(entity_df=ents().assign(event_timestamp=5),
                                features=["stats:value"]),
                           sy.InvalidInputError, "not timestamps"),
    "missing timestamps": (dict(entity_df=ents().assign(event_timestamp=pd.NaT),
                                features=["stats:value"]),
                           sy.InvalidInputError, "missing timestamps"),
    "unknown feature": (dict(entity_df=ents(), features=["stats:nope"]),
                        sy.NotFoundError, "View 'stats' has no feature 'nope'"),
    "unknown view": (dict(entity_df=ents(), features=["nope:value"]),
                     sy.NotFoundError, "Feature view 'nope' is not defined"),
    "malformed reference": (dict(entity_df=ents(), features=["value"]),
                            sy.InvalidInputError, "not of the form 'view:feature'"),
    "string instead of list": (dict(entity_df=ents(), features="stats:value"),
                               sy.InvalidInputError, "must be a non-empty list"),
    "unknown service": (dict(entity_df=ents(), feature_service="nope"),
                        sy.NotFoundError, "Feature service 'nope' is not defined"),
    "both features and service": (dict(entity_df=ents(), features=["stats:value"],
                                       feature_service="x"),
                                  sy.InvalidInputError, "exactly one of"),
    "clashing short names": (dict(entity_df=ents(shop_id=[1]),
                                  features=["stats:value", "shops:value"]),
                             sy.InvalidInputError, "full_feature_names=True"),
    "column named like a feature": (dict(entity_df=ents(value=[3.0]), features=["stats:value"]),
                                    sy.InvalidInputError, "already has columns \\['value'\\]"),
    "missing request data": (dict(entity_df=ents(), features=["doubled:double"]),
                             sy.InvalidInputError, "lacks request data \\['amount'\\]"),
    "wrong key type": (dict(entity_df=ents(customer_id=["1"]), features=["stats:value"]),
                       sy.InvalidInputError, "join key 'customer_id' holds large_string values"),
    "udf returns wrong columns": (dict(entity_df=ents(amount=[1.0]), features=["broken:bad"]),
                                  sy.InvalidInputError, "returned columns \\['other'\\]"),
    "not a frame": (dict(entity_df=[1, 2], features=["stats:value"]),
                    sy.InvalidInputError, "entity_df is a list"),
    "no frame and no range": (dict(features=["stats:value"]),
                              sy.InvalidInputError, "or both start and end"),
    "missing parquet file": (dict(entity_df="/nonexistent.parquet", features=["stats:value"]),
                             sy.InvalidInputError, "does not exist"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_clear_error(project: sy.Project, case: str) -> None:
    kwargs, error, message = CASES[case]
    with pytest.raises(error, match=message) as info:
        project.features.get_historical_features(**kwargs)
    assert info.value.hint


def test_on_demand_view_output_is_computed(project: sy.Project) -> None:
    out = project.features.get_historical_features(ents(amount=[4.0]),
                                                   features=["doubled:double", "stats:value"])
    assert out["double"].tolist() == [8.0] and out["value"].tolist() == [1.0]


def test_before_apply_retrieval_says_to_apply(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: fresh\n")
    with pytest.raises(sy.NotFoundError, match="no applied definitions") as info:
        sy.Project.load(tmp_path).features.get_historical_features(ents(),
                                                                   features=["stats:value"])
    assert "shipyard apply" in (info.value.hint or "")
