"""Relative effects, ratio, CUPED, Bayesian and sequential results against GrowthBook's gbstats.

The stored reference (data/gbstats_reference.json, written by gbstats_reference.py) always
runs; the live comparison runs where gbstats is importable.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shipyard.experiments.stats import srm_test
from tests.conftest import require_module
from tests.unit.experiments.gbstats_reference import REFERENCE_FILE, gbstats_result, shipyard_result

TOL = 1e-6
REFERENCE = json.loads(REFERENCE_FILE.read_text())
CASES = REFERENCE["cases"]


def _assert_close(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, abs=TOL), key


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_stored_gbstats_results(case: dict[str, Any]) -> None:
    _assert_close(shipyard_result(case), case["gbstats"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_live_gbstats(case: dict[str, Any]) -> None:
    require_module("gbstats")
    _assert_close(shipyard_result(case), gbstats_result(case))


@pytest.mark.parametrize("counts, weights", [([5000, 5100], [0.5, 0.5]),
                                             ([1_020, 2_950, 6_030], [0.1, 0.3, 0.6])])
def test_srm_matches_live_gbstats(counts: list[int], weights: list[float]) -> None:
    utils = require_module("gbstats.utils")
    assert srm_test(counts, weights).p_value == pytest.approx(utils.check_srm(counts, weights), abs=TOL)
