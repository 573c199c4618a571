"""Assignment: GrowthBook's published cases, uniformity, stickiness, independence."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.assignment import (
    assign,
    bucket_ranges,
    choose_variation,
    equal_weights,
    fnv1a32,
    in_namespace,
    unit_hash,
    unit_string,
)
from tests.conftest import require_module

CASES = json.loads((Path(__file__).parent / "data" / "growthbook_cases.json").read_text())
N_UNITS = 100_000  # for the chi-square tests of uniformity and independence
N_RAMP = 20_000  # for the exact stickiness properties, which hold unit by unit
UNITS = [f"user-{i}" for i in range(N_UNITS)]


def _variants(key: str, weights: list[float], n: int = N_RAMP, **options: object) -> np.ndarray:
    """Variant per unit of the first ``n`` UNITS, -1 for a unit outside coverage."""
    out = [assign(key, unit, weights, **options) for unit in UNITS[:n]]  # type: ignore[arg-type]
    return np.array([-1 if v is None else v for v in out])


def _buckets(key: str, n: int = N_RAMP) -> np.ndarray:
    return np.array([unit_hash(key, unit) for unit in UNITS[:n]])


# --- GrowthBook's SDK test suite -------------------------------------------------------------

@pytest.mark.parametrize("seed, value, version, expected", CASES["hash"])
def test_hash_matches_growthbook_cases(seed: str, value: str, version: int, expected: float | None) -> None:
    if expected is None:
        with pytest.raises(InvalidInputError, match="Unknown hash version 99"):
            unit_hash(seed, value, version=version)
    else:
        assert unit_hash(seed, value, version=version) == expected


@pytest.mark.parametrize("name, args, expected", CASES["getBucketRange"],
                         ids=[c[0] for c in CASES["getBucketRange"]])
def test_bucket_ranges_match_growthbook_cases(name: str, args: list, expected: list) -> None:
    n_variations, coverage, weights = args
    actual = bucket_ranges(n_variations, coverage=coverage, weights=weights)
    def rounded(ranges: list) -> list[tuple[float, float]]:
        return [(round(a, 6), round(b, 6)) for a, b in ranges]

    assert rounded(actual) == rounded(expected)


@pytest.mark.parametrize("name, n, ranges, expected", CASES["chooseVariation"],
                         ids=[c[0] for c in CASES["chooseVariation"]])
def test_choose_variation_matches_growthbook_cases(name: str, n: float, ranges: list, expected: int) -> None:
    assert choose_variation(n, [tuple(r) for r in ranges]) == (None if expected == -1 else expected)


@pytest.mark.parametrize("name, unit, namespace, expected", CASES["inNamespace"],
                         ids=[c[0] for c in CASES["inNamespace"]])
def test_in_namespace_matches_growthbook_cases(name: str, unit: str, namespace: list, expected: bool) -> None:
    assert in_namespace(unit, tuple(namespace)) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize("name, key, seed, unit, weights, coverage, version, bucket, variant", CASES["run"],
                         ids=[c[0] for c in CASES["run"]])
def test_assign_matches_growthbook_experiment_runs(name: str, key: str, seed: str | None, unit: str | int,
                                                   weights: list[float], coverage: float, version: int,
                                                   bucket: float, variant: int) -> None:
    assert unit_hash(seed or key, unit_string(unit), version=version) == bucket
    assert assign(key, unit, weights, coverage=coverage, seed=seed, hash_version=version) == variant


def test_equal_weights_and_fnv_reference_values() -> None:
    assert equal_weights(0) == [] and equal_weights(-1) == []
    assert [round(w, 8) for w in equal_weights(3)] == [0.33333333] * 3
    assert fnv1a32("") == 0x811C9DC5  # the FNV-1a 32-bit offset basis
    assert fnv1a32("a") == 0xE40C292C  # published FNV-1a test vector
    assert fnv1a32("foobar") == 0xBF9CF968


def test_non_ascii_ids_hash_utf16_code_units_like_the_js_sdk() -> None:
    assert unit_hash("", "😀", version=2) == 0.4971  # values from the JS SDK
    assert unit_hash("", "josé", version=1) == 0.586


def test_unit_ids_are_hashed_as_javascript_prints_them() -> None:
    assert unit_string(123) == "123"
    assert unit_string(2**53 + 1) == "9007199254740992"  # a JS number is a double
    assert unit_string(10**21) == "1e+21"
    assert unit_string(-(10**22) - 7) == "-1e+22"
    assert unit_string(np.int64(42)) == "42"
    assert assign("exp", 123, [0.5, 0.5]) == assign("exp", "123", [0.5, 0.5])


# --- the installed growthbook SDK as a live reference -----------------------------------------

def test_assign_agrees_with_the_growthbook_sdk() -> None:
    growthbook = require_module("growthbook")
    rng = random.Random(8)
    for i in range(2000):
        k = rng.randint(2, 4)
        raw = [rng.random() for _ in range(k)]
        weights = [r / sum(raw) for r in raw]
        unit = rng.choice([f"u{rng.randint(1, 10**6)}", rng.randint(1, 10**12), f"émile-{i}", f"🙂{i}"])
        key, seed = f"exp-{rng.randint(0, 30)}", rng.choice([None, f"salt-{i % 5}"])
        coverage, version = rng.choice([1.0, 0.5, round(rng.random(), 3)]), rng.choice([1, 2])
        result = growthbook.GrowthBook(attributes={"id": unit}).run(growthbook.Experiment(
            key=key, variations=list(range(k)), weights=weights, coverage=coverage, seed=seed,
            hashVersion=version))
        expected = result.variationId if result.inExperiment else None
        assert assign(key, unit, weights, coverage=coverage, seed=seed, hash_version=version) == expected


# --- statistical properties ---------------------------------------------------------------------

def test_assignment_is_uniform_over_100k_ids() -> None:
    counts = np.bincount(_variants("uniformity", [0.25] * 4, N_UNITS), minlength=4)
    assert counts.sum() == N_UNITS
    assert stats.chisquare(counts).pvalue > 0.001
    uneven = np.bincount(_variants("uniformity-uneven", [0.1, 0.9]), minlength=2)
    assert stats.chisquare(uneven, f_exp=[0.1 * N_RAMP, 0.9 * N_RAMP]).pvalue > 0.001


def test_buckets_are_uniform_over_the_unit_interval() -> None:
    histogram, _ = np.histogram(_buckets("buckets", N_UNITS), bins=100, range=(0.0, 1.0))
    assert stats.chisquare(histogram).pvalue > 0.001


def test_two_experiments_on_the_same_ids_are_independent() -> None:
    first = _variants("model-a-test", [0.5, 0.5], N_UNITS)
    second = _variants("model-b-test", [0.5, 0.5], N_UNITS)
    table = np.array([[np.sum((first == i) & (second == j)) for j in (0, 1)] for i in (0, 1)])
    assert stats.chi2_contingency(table, correction=False).pvalue > 0.001
    # the salt is the seed: sharing it deliberately gives the same split
    assert np.array_equal(_variants("x", [0.5, 0.5], 5000, seed="shared"),
                          _variants("y", [0.5, 0.5], 5000, seed="shared"))


# --- stickiness ---------------------------------------------------------------------------------

def test_same_inputs_always_give_the_same_variant() -> None:
    rng = random.Random(3)
    for unit in rng.sample(UNITS, 500):
        first = assign("sticky", unit, [0.2, 0.3, 0.5], coverage=0.8)
        assert all(assign("sticky", unit, (0.2, 0.3, 0.5), coverage=0.8) == first for _ in range(3))


def test_ramping_weights_moves_only_the_units_that_must_move() -> None:
    # treatment 10% -> 50%: GrowthBook ranges go from [0, .9) [.9, 1) to [0, .5) [.5, 1), so exactly
    # the units with a bucket in [.5, .9) move, all from control to treatment, and nobody else.
    buckets = _buckets("ramp")
    before, after = _variants("ramp", [0.9, 0.1]), _variants("ramp", [0.5, 0.5])
    moved = before != after
    assert np.array_equal(moved, (buckets >= 0.5) & (buckets < 0.9))
    assert np.all(before[moved] == 0) and np.all(after[moved] == 1)
    assert np.all(after[before == 1] == 1)
    # the smallest possible move: 40% of units must change arm for the split to change by 40 points
    assert abs(moved.mean() - 0.4) < 0.015


def test_canary_schedule_only_ever_adds_units_to_treatment() -> None:
    treated_before = np.zeros(N_RAMP, dtype=bool)
    for share in (0.01, 0.05, 0.25, 0.5):
        treated = _variants("canary", [1 - share, share]) == 1
        assert np.all(treated[treated_before])
        assert abs(treated.mean() - share) < 0.015
        treated_before = treated


def test_raising_coverage_keeps_every_enrolled_unit_in_its_variant() -> None:
    previous = _variants("coverage", [0.5, 0.5], coverage=0.1)
    assert abs(np.mean(previous >= 0) - 0.1) < 0.015
    for coverage in (0.5, 1.0):
        current = _variants("coverage", [0.5, 0.5], coverage=coverage)
        enrolled = previous >= 0
        assert np.array_equal(current[enrolled], previous[enrolled])
        previous = current
    assert np.all(previous >= 0)


# --- input handling -----------------------------------------------------------------------------

@pytest.mark.parametrize("weights", [[0.5, 0.6], [0.5], [], [-0.5, 1.5], [float("nan"), 1.0],
                                     [True, False], [[0.5], [0.5]]])
def test_weights_that_are_not_a_split_are_rejected(weights: list) -> None:
    with pytest.raises(InvalidInputError, match="not a split of traffic") as info:
        assign("exp", "u1", weights)
    assert "[0.5, 0.5]" in (info.value.hint or "")


@pytest.mark.parametrize("coverage", [-0.1, 1.5, float("nan"), True])
def test_coverage_outside_zero_one_is_rejected(coverage: float) -> None:
    with pytest.raises(InvalidInputError, match="Coverage"):
        assign("exp", "u1", [0.5, 0.5], coverage=coverage)


@pytest.mark.parametrize("unit", [True, 1.5, None, b"u1"])
def test_unit_ids_must_be_strings_or_integers(unit: object) -> None:
    with pytest.raises(InvalidInputError, match="unit id must be a string or an integer"):
        assign("exp", unit, [0.5, 0.5])  # type: ignore[arg-type]


def test_units_growthbook_never_buckets_are_in_no_variant() -> None:
    assert assign("exp", "", [0.5, 0.5]) is None
    assert assign("exp", 0, [0.5, 0.5]) is None
    assert assign("exp", "0", [0.5, 0.5]) is not None  # a non-empty string is a real id
    assert assign("exp", "u1", [0.5, 0.5], coverage=0.0) is None


def test_empty_key_and_unknown_hash_version_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="Experiment key"):
        assign("", "u1", [0.5, 0.5])
    with pytest.raises(InvalidInputError, match="Unknown hash version 3"):
        assign("exp", "u1", [0.5, 0.5], hash_version=3)
