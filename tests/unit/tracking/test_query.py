"""The run filter language: parsed by a tokenizer, never evaluated as code."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.tracking.query import Clause, matches, parse_filter, parse_order, sort_runs


def run(name: str, *, metrics: dict[str, float] | None = None,
        params: dict[str, str] | None = None, tags: dict[str, str] | None = None,
        status: str = "finished") -> dict[str, Any]:
    return {"name": name, "status": status, "metrics": metrics or {}, "params": params or {},
            "tags": tags or {}}


def test_clauses_parse_with_both_quote_styles_and_backticks() -> None:
    clauses = parse_filter("metrics.auc > 0.8 AND params.model = 'lgbm' and tags.team != \"risk\" "
                           "and metrics.`val auc` >= -1e-3 and status = 'it''s'")
    assert clauses == [Clause("metrics", "auc", ">", 0.8), Clause("params", "model", "=", "lgbm"),
                       Clause("tags", "team", "!=", "risk"),
                       Clause("metrics", "val auc", ">=", -0.001),
                       Clause("attributes", "status", "=", "it's")]


def test_empty_filter_matches_everything() -> None:
    assert parse_filter("") == [] and parse_filter(None) == []
    assert matches(run("a"), [])


@pytest.mark.parametrize(("text", "message"), [
    ("metrics.auc >", "is not `<field> <op> <value>`"),
    ("metrics.auc > 1 or params.x = 'y'", "where `and`"),
    ("metrics.auc > 1 and", "where `and`"),
    ("metric.auc > 1", "Unknown scope 'metric'"),
    ("colour = 'red'", "Unknown run attribute 'colour'"),
    ("metrics.auc = 'high'", "compared with text"),
    ("__import__('os').system('true')", "Cannot read the filter"),
    ("params.x = unquoted", "is not `<field> <op> <value>`"),
])
def test_malformed_filters_are_refused_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        parse_filter(text)
    assert info.value.hint


def test_matching_compares_numbers_numerically_and_text_as_text() -> None:
    lgbm = run("a", metrics={"auc": 0.9}, params={"model": "lgbm", "lr": "0.1"})
    assert matches(lgbm, parse_filter("metrics.auc > 0.8 and params.model = 'lgbm'"))
    assert matches(lgbm, parse_filter("params.lr < 0.5"))  # numeric literal: numeric compare
    assert not matches(lgbm, parse_filter("params.lr = '0.10'"))  # text literal: exact text
    assert not matches(lgbm, parse_filter("metrics.loss < 1"))  # missing key never matches
    assert not matches(run("b", metrics={"auc": float("nan")}), parse_filter("metrics.auc < 1"))


def test_ordering_puts_missing_values_last_in_both_directions() -> None:
    runs = [run("a", metrics={"auc": 0.7}), run("b"), run("c", metrics={"auc": 0.9}),
            run("d", metrics={"auc": 0.8})]
    desc = sort_runs(runs, parse_order("metrics.auc desc"))
    asc = sort_runs(runs, parse_order("metrics.auc"))
    assert [r["name"] for r in desc] == ["c", "d", "a", "b"]
    assert [r["name"] for r in asc] == ["a", "d", "c", "b"]


def test_ordering_by_several_fields() -> None:
    runs = [run("a", params={"m": "x"}, metrics={"auc": 0.7}),
            run("b", params={"m": "y"}, metrics={"auc": 0.9}),
            run("c", params={"m": "x"}, metrics={"auc": 0.8})]
    ordered = sort_runs(runs, parse_order(["params.m asc", "metrics.auc DESC"]))
    assert [r["name"] for r in ordered] == ["c", "a", "b"]
