"""Each test equals scipy's reference computation on fixed data (same definition)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from shipyard.monitoring import build_profile, drift
from shipyard.monitoring.drift_tests import (
    NumericSample,
    ks_test,
    two_proportion_test,
    wasserstein_normed,
)

TOL = 1e-9


@pytest.fixture(scope="module")
def numeric_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.normal(0, 1, 400), rng.normal(0.2, 1.1, 350)


def _frames(ref: np.ndarray | list[str], cur: np.ndarray | list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})


def test_ks_matches_ks_2samp(numeric_pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = numeric_pair
    col = drift(*_frames(ref, cur)).columns["x"]
    expected = stats.ks_2samp(ref, cur)
    assert col.method == "ks"
    assert col.statistic == pytest.approx(expected.statistic, abs=TOL)
    assert col.p_value == pytest.approx(expected.pvalue, abs=TOL)
    assert col.effect_size == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), abs=TOL)


def test_wasserstein_matches_scipy_normed_by_reference_std(
        numeric_pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = numeric_pair
    col = drift(*_frames(ref, cur), method="wasserstein").columns["x"]
    assert col.statistic == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), abs=TOL)
    assert col.threshold == 0.1 and col.p_value is None


def _categories(n: int = 300) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(7)
    ref = list(rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]))
    cur = list(rng.choice(["a", "b", "c", "d"], n - 50, p=[0.3, 0.3, 0.25, 0.15]))
    return ref, cur


def _table(ref: list[str], cur: list[str]) -> np.ndarray:
    labels = ["a", "b", "c", "d"]
    return np.array([[ref.count(x) for x in labels], [cur.count(x) for x in labels]], dtype=float)


def test_chi2_is_the_two_sample_contingency_test() -> None:
    ref, cur = _categories()
    col = drift(*_frames(ref, cur)).columns["x"]
    expected = stats.chi2_contingency(_table(ref, cur))
    assert col.method == "chi2"
    assert col.statistic == pytest.approx(expected.statistic, abs=TOL)
    assert col.p_value == pytest.approx(expected.pvalue, abs=TOL)
    assert col.effect_size == pytest.approx(np.sqrt(expected.statistic / len(ref + cur)), abs=TOL)


def test_count_distances_match_scipy() -> None:
    ref, cur = _categories(3_000)  # large enough that no category is grouped away
    table = _table(ref, cur)
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    report = {m: drift(*_frames(ref, cur), method=m).columns["x"].statistic
              for m in ("jensenshannon", "psi", "kl")}
    assert report["jensenshannon"] == pytest.approx(distance.jensenshannon(table[0], table[1]), abs=TOL)
    assert report["psi"] == pytest.approx(np.sum((q - p) * np.log(q / p)), abs=TOL)
    assert report["kl"] == pytest.approx(stats.entropy(p, q), abs=TOL)


def test_psi_on_numeric_uses_reference_deciles() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=20_000), rng.normal(0.3, 1.2, 20_000)
    col = drift(*_frames(ref, cur), method="psi").columns["x"]
    edges = np.quantile(ref, np.linspace(0, 1, 11))
    edges[-1] = np.nextafter(edges[-1], np.inf)
    # Slots: below the reference minimum, the ten deciles, at or above the maximum.
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=12) / ref.size
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=12) / cur.size
    p, q = p[(p + q) > 0], q[(p + q) > 0]  # slots empty in both windows carry nothing
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    assert col.statistic == pytest.approx(np.sum((q - p) * np.log(q / p)), abs=TOL)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_binned_ks_and_wasserstein_are_close_to_exact(shift: float) -> None:
    """Stated error on 200 reference-quantile bins: W never above exact and within 1% (+0.001);
    KS D never above exact and within 0.006 of it."""
    rng = np.random.default_rng(11)
    ref, cur = rng.lognormal(0, 0.7, 50_000), rng.lognormal(shift, 0.8, 40_000)
    ref_p = build_profile(pd.DataFrame({"x": ref}))
    cur_p = build_profile(pd.DataFrame({"x": cur}), reference=ref_p)
    binned = NumericSample(ref_p.columns["x"], cur_p.columns["x"])  # type: ignore[arg-type]
    exact = NumericSample(binned.reference, binned.current, np.sort(ref), np.sort(cur))
    w_binned, w_exact = wasserstein_normed(binned).statistic, wasserstein_normed(exact).statistic
    assert w_exact - 0.01 * w_exact - 0.001 <= w_binned <= w_exact + 1e-12
    d_binned, d_exact = ks_test(binned).statistic, ks_test(exact).statistic
    assert d_exact - 0.006 <= d_binned <= d_exact + 1e-12


def test_missing_share_test_is_the_uncorrected_2x2_chi_square() -> None:
    result = two_proportion_test(20, 1_000, 45, 900)
    table = np.array([[20, 980], [45, 855]])
    expected = stats.chi2_contingency(table, correction=False)
    assert result.statistic**2 == pytest.approx(expected.statistic, abs=TOL)
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOL)
    assert result.effect_size == pytest.approx(2 * np.arcsin(np.sqrt(0.05)) - 2 * np.arcsin(np.sqrt(0.02)))
