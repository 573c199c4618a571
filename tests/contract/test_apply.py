"""`apply`: plan, idempotence, history, diffs and every validation error, on both metadata DBs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import shipyard as sy
from tests.conftest import ProjectFactory

T0 = pd.Timestamp("2026-03-01", tz="UTC")

BASE = """
from datetime import timedelta
import pandas as pd
import shipyard as sy
customer = sy.Entity("customer", join_keys=["customer_id"])
stats = sy.FeatureView(
    name="stats", entities=[customer], ttl=timedelta(days=1),
    schema=[sy.Field("value", sy.Float64), sy.Field("count", sy.Int64)],
    source=sy.FileSource("stats.parquet"))
req = sy.RequestSource("req", [sy.Field("amount", sy.Float64)])

@sy.on_demand_feature_view(sources=[stats[["value"]], req], schema=[sy.Field("ratio", sy.Float64)])
def ratio(df):
    return pd.DataFrame({"ratio": df["amount"] / df["value"]})

service = sy.FeatureService("svc", [stats[["count"]], ratio])
"""


def write_data(root: Path) -> None:
    pd.DataFrame({"customer_id": [1], "event_timestamp": [T0], "value": [2.0], "count": [3],
                  "label": ["x"]}).to_parquet(root / "stats.parquet")


@pytest.fixture
def root(make_project: ProjectFactory) -> Path:
    path = make_project(BASE)
    write_data(path)
    return path


def reload(root: Path, definitions: str | None = None) -> sy.Project:
    if definitions is not None:
        (root / "definitions.py").write_text(textwrap.dedent(definitions))
    return sy.Project.load(root)


def test_first_apply_adds_everything_and_is_version_1(root: Path) -> None:
    plan = reload(root).apply()
    assert plan.applied and plan.version == 1
    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        ("entities", "customer", "add"), ("feature_views", "stats", "add"),
        ("on_demand_feature_views", "ratio", "add"), ("feature_services", "svc", "add")]


def test_reapplying_the_same_definitions_is_a_noop(root: Path) -> None:
    reload(root).apply()
    plan = reload(root).apply()
    assert plan.is_noop and not plan.applied and plan.version == 1
    assert [v.version for v in reload(root).registry.list_versions()] == [1]


def test_dry_run_plans_without_storing(root: Path) -> None:
    project = reload(root)
    plan = project.apply(dry_run=True)
    assert len(plan.changes) == 4 and not plan.applied
    assert project.registry.list_versions() == []


def test_changes_make_numbered_versions_with_field_level_diffs(root: Path) -> None:
    reload(root).apply()
    changed = BASE.replace("timedelta(days=1)", "timedelta(days=2)").replace(
        'service = sy.FeatureService("svc", [stats[["count"]], ratio])', "")
    plan = reload(root, changed).apply()
    assert plan.version == 2
    by_name = {c.name: c for c in plan.changes}
    assert by_name["stats"].action == "change"
    assert by_name["stats"].details == ("ttl_seconds: 86400 -> 172800",)
    assert by_name["svc"].action == "remove"
    project = reload(root)
    assert [v.version for v in project.registry.list_versions()] == [1, 2]
    assert [(c.name, c.action) for c in project.registry.diff(1, 2)] == [
        ("stats", "change"), ("svc", "remove")]


def test_changing_an_on_demand_function_is_a_change(root: Path) -> None:
    reload(root).apply()
    plan = reload(root, BASE.replace('df["amount"] / df["value"]', 'df["amount"] * 2')).apply()
    assert [(c.name, c.action) for c in plan.changes] == [("ratio", "change")]
    assert any(d.startswith("udf.code_sha256") for d in plan.changes[0].details)


def test_an_unapplied_function_change_is_refused_at_retrieval(root: Path) -> None:
    reload(root).apply()
    project = reload(root, BASE.replace('df["amount"] / df["value"]', 'df["amount"] * 2'))
    entities = pd.DataFrame({"customer_id": [1], "event_timestamp": [T0], "amount": [4.0]})
    with pytest.raises(sy.ConflictError, match="changed since the last apply"):
        project.features.get_historical_features(entities, feature_service="svc")


def test_unknown_version_is_not_found(root: Path) -> None:
    project = reload(root)
    project.apply()
    with pytest.raises(sy.NotFoundError, match="version 9 does not exist"):
        project.registry.diff(1, 9)


INVALID = {
    "duplicate view name": (
        BASE + "\nstats2 = sy.FeatureView(name='stats', entities=[customer], schema=["
               "sy.Field('value', sy.Float64)], source=sy.FileSource('stats.parquet'))",
        "FeatureView name 'stats' is defined more than once"),
    "unknown entity": (
        BASE.replace("entities=[customer]", "entities=['shop']"),
        "uses unknown entity 'shop'"),
    "field missing from source": (
        BASE.replace('sy.Field("count", sy.Int64)', 'sy.Field("counts", sy.Int64)'),
        "field 'counts' is not a column of 'stats.parquet'"),
    "incompatible type": (
        BASE.replace('sy.Field("count", sy.Int64)', 'sy.Field("label", sy.Int64)'),
        "field 'label' is declared Int64 but the source column has type VARCHAR"),
    "zero ttl": (BASE.replace("timedelta(days=1)", "timedelta(0)"), "which is not positive"),
    "negative ttl": (BASE.replace("timedelta(days=1)", "timedelta(hours=-1)"),
                     "which is not positive"),
    "missing timestamp column": (
        BASE.replace('sy.FileSource("stats.parquet")',
                     'sy.FileSource("stats.parquet", timestamp_field="ts")'),
        "timestamp_field 'ts' is not a column"),
    "missing source file": (BASE.replace('"stats.parquet"', '"nope.parquet"'),
                            "does not exist"),
    "on-demand input view unknown": (
        BASE.replace("sources=[stats[[\"value\"]], req]", "sources=[stats[[\"nope\"]], req]"),
        "OnDemandFeatureView 'ratio' reads unknown feature stats:nope"),
    "on-demand view reads an unapplied view": (
        BASE.replace("sources=[stats[[\"value\"]], req]",
                     "sources=[sy.FeatureView(name='ghost', entities=[customer], schema=["
                     "sy.Field('value', sy.Float64)], source=sy.FileSource('stats.parquet'))"
                     "[['value']], req]"),
        "reads unknown feature view 'ghost'"),
    "service names unknown feature": (
        BASE.replace('stats[["count"]]', 'stats[["nope"]]'),
        "FeatureService 'svc' names unknown feature stats:nope"),
    "service names unknown view": (
        BASE.replace('stats[["count"]], ratio', '"other:x"'),
        "FeatureService 'svc' names unknown view 'other'"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_each_validation_error_is_clear_and_stores_nothing(root: Path, case: str) -> None:
    reload(root).apply()
    definitions, message = INVALID[case]
    project = reload(root, definitions)
    with pytest.raises(sy.DefinitionError, match=message) as info:
        project.apply()
    assert "nothing was stored" in info.value.message and info.value.hint
    assert [v.version for v in reload(root).registry.list_versions()] == [1]


def test_a_broken_definitions_file_names_the_file(root: Path) -> None:
    with pytest.raises(sy.DefinitionError, match="Importing definitions.py failed"):
        reload(root, BASE + "\nraise RuntimeError('boom')\n").apply()


def test_definitions_files_can_import_each_other(root: Path) -> None:
    (root / "entities.py").write_text("import shipyard as sy\n"
                                      "customer = sy.Entity('customer', join_keys=['customer_id'])\n")
    plan = reload(root, BASE.replace('customer = sy.Entity("customer", join_keys=["customer_id"])',
                                     "from entities import customer")).apply()
    assert plan.version == 1 and len(plan.changes) == 4


APPLY_SCRIPT = """
import sys, shipyard as sy
sys.exit(0 if sy.Project.load(sys.argv[1]).apply().version else 1)
"""


def test_two_processes_applying_at_once_keep_a_consistent_history(root: Path) -> None:
    reload(root).apply()
    copies = []
    for i in range(4):  # four different definitions applied concurrently
        variant = BASE.replace("timedelta(days=1)", f"timedelta(days={i + 2})")
        (root / "definitions.py").write_text(textwrap.dedent(variant))
        copy = root.parent / f"copy{i}"
        subprocess.run(["cp", "-r", str(root), str(copy)], check=True)
        copies.append(copy)
    procs = [subprocess.Popen([sys.executable, "-c", APPLY_SCRIPT, str(c)]) for c in copies]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    versions = reload(root).registry.list_versions()
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    assert len({v.definitions_sha256 for v in versions}) == 5
