"""Definitions: constructors check their own arguments; specs round-trip."""

from __future__ import annotations

from datetime import timedelta

import pytest

import shipyard as sy
from shipyard.core.types import dtype_from_name
from shipyard.features.catalog import Catalog
from shipyard.features.definitions import FeatureViewProjection

customer = sy.Entity("customer", join_keys=["customer_id"])
stats = sy.FeatureView(
    name="stats", entities=[customer], ttl=timedelta(hours=3),
    schema=[sy.Field("a", sy.Int64), sy.Field("emb", sy.Array(sy.Float32))],
    source=sy.PushSource("events", sy.FileSource("x.csv", created_timestamp_field="c",
                                                 field_mapping={"A": "a"})),
    tags={"team": "risk"})


@sy.on_demand_feature_view(sources=[stats[["a"]], sy.RequestSource("r", [sy.Field("x", sy.Int32)])],
                           schema=[sy.Field("y", sy.Float64)], mode="python")
def plus(inputs: dict) -> dict:
    return {"y": [a + x for a, x in zip(inputs["a"], inputs["x"], strict=True)]}


service = sy.FeatureService("svc", [stats[["a"]], "stats:emb", plus])


def test_entity_defaults_its_join_key() -> None:
    assert sy.Entity("shop").join_keys == ("shop_id",)


def test_catalog_spec_round_trips() -> None:
    catalog = Catalog.of([customer, stats, plus, service])
    spec = catalog.to_spec()
    again = Catalog.from_spec(spec)
    assert again.to_spec() == spec
    assert again.feature_views["stats"].source.batch_source.file_format == "csv"
    assert again.on_demand_feature_views["plus"].udf_spec["name"] == "plus"


def test_feature_service_merges_projections_of_one_view() -> None:
    assert service.projections == (FeatureViewProjection("stats", ("a", "emb")),
                                   FeatureViewProjection("plus", None))


def test_on_demand_spec_keeps_the_function_source_and_hash() -> None:
    assert "def plus" in plus.udf_spec["code"] and len(plus.udf_spec["code_sha256"]) == 64


def test_dtype_names_parse_back() -> None:
    assert dtype_from_name("Array(Float32)") == sy.Array(sy.Float32)
    assert dtype_from_name("Int64") is sy.Int64
    with pytest.raises(sy.DefinitionError, match="Unknown dtype 'Int128'"):
        dtype_from_name("Int128")


@pytest.mark.parametrize("dtype, source_type, ok", [
    (sy.Int64, "INTEGER", True), (sy.Int32, "BIGINT", False), (sy.Float64, "DECIMAL(10,2)", True),
    (sy.String, "VARCHAR", True), (sy.Bool, "VARCHAR", False),
    (sy.UnixTimestamp, "TIMESTAMP WITH TIME ZONE", True), (sy.Array(sy.Int64), "BIGINT[]", True),
    (sy.Array(sy.Int64), "BIGINT", False),
])
def test_dtype_accepts_compatible_source_types(dtype: object, source_type: str, ok: bool) -> None:
    assert dtype.accepts_sql(source_type) is ok  # type: ignore[attr-defined]


@pytest.mark.parametrize("make, message", [
    (lambda: sy.Entity("bad name"), "not a valid identifier"),
    (lambda: sy.Field("x", int), "not a Shipyard dtype"),
    (lambda: sy.FeatureView(name="v", entities=[customer], schema=["a"],
                            source=sy.FileSource("x.parquet")), "not sy.Field"),
    (lambda: sy.FeatureView(name="v", entities=[customer], schema=[], source="x.parquet"),
     "Use sy.FileSource"),
    (lambda: sy.FeatureView(name="v", entities=[customer], schema=[], ttl=3600,
                            source=sy.FileSource("x.parquet")), "Pass a datetime.timedelta"),
    (lambda: sy.FileSource("x.json", file_format="json"), "Use 'parquet' or 'csv'"),
    (lambda: sy.FeatureService("s", ["nocolon"]), "not a feature reference"),
    (lambda: sy.OnDemandFeatureView("o", ["x"], [], None), "Sources are feature views"),
    (lambda: sy.OnDemandFeatureView("o", [], [], None, mode="spark"), "mode='pandas'"),
])
def test_constructor_errors_name_the_fix(make: object, message: str) -> None:
    with pytest.raises(sy.DefinitionError, match=message) as info:
        make()  # type: ignore[operator]
    assert info.value.hint
