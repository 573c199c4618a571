"""Window helpers: merging many hourly profiles at once, window parsing."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from shipyard.monitoring import build_profile, merge_profiles
from shipyard.monitoring.windows import merge_many, parse_window

from .synthetic import make_window


def test_merge_many_equals_merging_one_by_one() -> None:
    reference = build_profile(make_window(2_000, shifted=False, seed=1))
    parts = [build_profile(make_window(300 + 50 * i, shifted=i % 2 == 1, seed=10 + i),
                           reference=reference) for i in range(6)]
    parts.append(build_profile(make_window(0, shifted=False, seed=3), reference=reference))
    many, folded = merge_many(parts), merge_profiles(parts)
    assert many.n_rows == folded.n_rows
    for name, column in folded.columns.items():
        other = many.columns[name]
        np.testing.assert_array_equal(other.counts, column.counts)
        assert (other.n_rows, other.n_missing) == (column.n_rows, column.n_missing)
        if column.kind == "numeric":
            assert other.mean == pytest.approx(column.mean, rel=1e-12)
            assert other.m2 == pytest.approx(column.m2, rel=1e-9)
            assert (other.minimum, other.maximum) == (column.minimum, column.maximum)
            np.testing.assert_allclose(other.slot_sums, column.slot_sums)


@pytest.mark.parametrize(("text", "hours"), [("1h", 1), ("6h", 6), ("1d", 24), ("2w", 336),
                                             ("120m", 2)])
def test_windows_are_whole_hours(text: str, hours: int) -> None:
    assert parse_window(text) == timedelta(hours=hours)


@pytest.mark.parametrize("text", ["1e9d", "infh", "nanh", "-infd", "7x", "d"])
def test_windows_out_of_range_or_malformed_are_invalid_input(text: str) -> None:
    # regression: '1e9d' and 'infh' raised OverflowError out of timedelta
    from shipyard.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="is not a duration"):
        parse_window(text)
