from __future__ import annotations

import numpy as np
import pytest

from shipyard.monitoring.binning import (
    coarsen,
    quantile_edges,
    sorted_counts,
    sorted_finite,
    sum_squared_deviations,
)


@pytest.mark.parametrize("family", ["normal", "ties", "constant", "tiny"])
def test_edges_are_numpy_quantiles_and_counts_match_searchsorted(family: str) -> None:
    rng = np.random.default_rng(0)
    values = {"normal": rng.normal(size=5_000), "ties": rng.poisson(2.0, 5_000).astype(float),
              "constant": np.full(100, 3.5),
              "tiny": np.array([2.0, -1.0, 7.5])}[family]
    ordered, n_nan = sorted_finite(values)
    edges = quantile_edges(ordered, 50)
    quantiles = np.quantile(values, np.linspace(0, 1, 51))
    expected = np.unique(np.append(quantiles[:-1], np.nextafter(values.max(), np.inf)))
    np.testing.assert_array_equal(edges, expected)
    probe = np.concatenate([values, rng.normal(size=1_000) * 5])
    counts = sorted_counts(np.sort(probe), edges)
    expected_counts = np.bincount(np.searchsorted(edges, probe, side="right"), minlength=edges.size + 1)
    np.testing.assert_array_equal(counts, expected_counts)
    assert counts[1:-1].sum() >= values.size and n_nan == 0
    assert ordered.size == values.size


def test_sorted_finite_drops_nan_and_inf() -> None:
    values = np.array([3.0, np.nan, -np.inf, 1.0, np.inf, np.nan, 2.0])
    ordered, n_nan = sorted_finite(values)
    np.testing.assert_array_equal(ordered, [1.0, 2.0, 3.0])
    assert n_nan == 2


def test_coarsen_keeps_totals_and_tails() -> None:
    rng = np.random.default_rng(1)
    ref = np.concatenate(([0], rng.integers(1, 50, 200), [0]))
    cur = np.concatenate(([7], rng.integers(1, 50, 200), [9]))
    ref_c, cur_c = coarsen(ref, cur, 10)
    assert ref_c.sum() == ref.sum() and cur_c.sum() == cur.sum()
    assert (cur_c[0], cur_c[-1]) == (7, 9) and ref_c.size == 12


def test_sum_squared_deviations_is_accurate_on_offset_data() -> None:
    values = 1e6 + np.random.default_rng(2).normal(size=200_001)
    mean = values.mean()
    assert sum_squared_deviations(values, mean) == pytest.approx(np.sum((values - mean) ** 2), rel=1e-10)
