from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    build_profile,
    drift,
    drift_from_profiles,
    merge_profiles,
)

from .synthetic import make_window


@pytest.fixture(scope="module")
def reference_profile() -> Profile:
    return build_profile(make_window(20_000, shifted=False, seed=21))


def test_merged_hourly_profiles_equal_the_daily_profile(reference_profile: Profile) -> None:
    day = make_window(24_000, shifted=True, seed=22)
    hours = [build_profile(day.iloc[h * 1_000:(h + 1) * 1_000], reference=reference_profile)
             for h in range(24)]
    merged = merge_profiles(hours)
    daily = build_profile(day, reference=reference_profile)
    assert merged.n_rows == daily.n_rows == 24_000
    for name, col in daily.columns.items():
        other = merged.columns[name]
        np.testing.assert_array_equal(other.counts, col.counts)
        assert other.n_missing == col.n_missing
        if isinstance(col, NumericProfile):
            assert isinstance(other, NumericProfile)
            assert (other.minimum, other.maximum) == (col.minimum, col.maximum)
            assert other.mean == pytest.approx(col.mean, rel=1e-12)
            assert other.std == pytest.approx(col.std, rel=1e-9)
            np.testing.assert_allclose(other.slot_sums, col.slot_sums, rtol=1e-12)
    assert drift_from_profiles(reference_profile, merged).drifted_columns == \
        drift_from_profiles(reference_profile, daily).drifted_columns


def test_profiles_round_trip_through_json(reference_profile: Profile) -> None:
    window = build_profile(make_window(2_000, shifted=True, seed=23), reference=reference_profile)
    for profile in (reference_profile, window):
        restored = Profile.from_dict(json.loads(json.dumps(profile.to_dict(), allow_nan=False)))
        assert restored.to_dict() == profile.to_dict()
    restored_report = drift_from_profiles(
        Profile.from_dict(json.loads(json.dumps(reference_profile.to_dict()))),
        Profile.from_dict(json.loads(json.dumps(window.to_dict()))))
    assert restored_report.to_dict() == drift_from_profiles(reference_profile, window).to_dict()


@pytest.mark.parametrize("n", [600, 5_000, 120_000])
def test_profile_verdicts_agree_with_raw_verdicts(n: int) -> None:
    """Same verdicts; statistics equal on binned paths, within the stated error otherwise."""
    reference, current = make_window(n, shifted=False, seed=31), make_window(n, shifted=True, seed=32)
    raw = drift(reference, current)
    ref_profile = build_profile(reference)
    from_profiles = drift_from_profiles(ref_profile, build_profile(current, reference=ref_profile))
    assert from_profiles.drifted_columns == raw.drifted_columns
    for name, col in raw.columns.items():
        other = from_profiles.columns[name]
        assert other.method == col.method
        tolerance = {"ks": 0.006, "wasserstein": 0.01 * col.statistic + 0.001}.get(col.method, 1e-12)
        assert other.statistic == pytest.approx(col.statistic, abs=tolerance), name
        assert other.missing_share_current == col.missing_share_current


def test_merging_profiles_on_different_bins_is_refused() -> None:
    a = build_profile(pd.DataFrame({"x": np.arange(10.0), "c": list("ab") * 5}))
    b = build_profile(pd.DataFrame({"x": np.arange(5.0, 15.0), "c": list("ba") * 5}))
    with pytest.raises(InvalidInputError, match="different bins") as info:
        a.merge(b)
    assert "reference=" in (info.value.hint or "")
    with pytest.raises(InvalidInputError, match="different vocabularies"):
        a.columns["c"].merge(  # type: ignore[arg-type]
            CategoricalProfile(("z",), np.array([1, 0]), 1))
    with pytest.raises(InvalidInputError, match="No profiles"):
        merge_profiles([])


def test_current_profile_counts_unseen_values_as_other() -> None:
    ref = build_profile(pd.DataFrame({"c": ["a", "b", "a", None]}))
    cur = build_profile(pd.DataFrame({"c": ["a", "new", "new", "b", None, None]}), reference=ref)
    col = cur.columns["c"]
    assert isinstance(col, CategoricalProfile)
    assert col.categories == ("a", "b") and col.counts.tolist() == [1, 1, 2] and col.n_missing == 2
