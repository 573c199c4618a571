from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring import drift

from .synthetic import SHIFTED, make_window


@pytest.mark.parametrize("fixture", ["windows_small", "windows_large"])
def test_injected_drift_is_found_in_the_shifted_columns_only(fixture: str, request: pytest.FixtureRequest
                                                             ) -> None:
    reference, current = request.getfixturevalue(fixture)
    report = drift(reference, current)
    assert sorted(report.drifted_columns) == sorted(SHIFTED)
    assert report.dataset_drift is False  # 4 of 10 < 0.5
    assert drift(reference, current, threshold_share=0.4).dataset_drift is True
    expected = {"numeric": "ks", "categorical": "chi2"} if fixture == "windows_small" else \
        {"numeric": "wasserstein", "categorical": "jensenshannon"}
    assert {col.kind: col.method for col in report.columns.values()} == expected


def test_p_value_tests_are_calibrated_on_same_distribution_samples() -> None:
    """200 repetitions, alpha = 0.05: flags stay within the binomial 99.9% bound."""
    rng = np.random.default_rng(2024)
    probs = [0.45, 0.2, 0.12, 0.08, 0.05, 0.04, 0.03, 0.02, 0.005, 0.005]
    flags = {"normal": 0, "ints": 0, "cat_small": 0, "cat_high_card": 0, "missing": 0}
    reps, naive = 200, 0
    for _ in range(reps):
        frames = []
        for n in (120, 100):
            with_nulls = rng.normal(size=n)
            with_nulls[rng.random(n) < 0.1] = np.nan
            frames.append(pd.DataFrame({
                "normal": with_nulls,
                "ints": rng.poisson(2.0, n),
                "cat_small": rng.choice(list("abcdefghij"), n, p=probs),
                "cat_high_card": rng.integers(0, 300, n).astype(str),
            }))
        report = drift(frames[0], frames[1])
        # The goodness-of-fit test that treats the reference frequencies as exact, for contrast.
        ref_counts = frames[0]["cat_small"].value_counts()
        cur_counts = frames[1]["cat_small"].value_counts().reindex(ref_counts.index, fill_value=0)
        if cur_counts.sum() == 100:
            expected = ref_counts / ref_counts.sum() * 100
            naive += stats.chisquare(cur_counts, expected).pvalue < 0.05
        for name in ("normal", "ints", "cat_small", "cat_high_card"):
            flags[name] += report.columns[name].value_drift_detected
        flags["missing"] += report.columns["normal"].missing_drift_detected
    bound = stats.binom.ppf(0.999, reps, 0.05)
    assert all(count <= bound for count in flags.values()), flags
    assert naive > 2 * bound  # what a calibrated test avoids


def test_distances_do_not_misfire_on_high_cardinality_or_noise() -> None:
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(20):
        windows = [pd.DataFrame({"city": rng.integers(0, 3_000, n).astype(str),
                                 "zipf": np.minimum(rng.zipf(1.3, n), 10_000).astype(str),
                                 "x": rng.normal(size=n)}) for n in (1_500, 1_200)]
        hits += len(drift(*windows).drifted_columns)
    assert hits == 0


def test_missing_share_jump_is_drift_even_when_values_match() -> None:
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"x": rng.normal(size=5_000), "c": rng.choice(["a", "b"], 5_000)})
    current = pd.DataFrame({"x": rng.normal(size=5_000), "c": rng.choice(["a", "b"], 5_000)})
    current.loc[current.index[::2], ["x", "c"]] = np.nan  # 50% missing
    report = drift(reference, current)
    for name in ("x", "c"):
        col = report.columns[name]
        assert not col.value_drift_detected and col.missing_drift_detected and col.drift_detected
        assert col.missing_share_reference == 0 and col.missing_share_current == pytest.approx(0.5)
        assert col.missing_effect_size == pytest.approx(2 * np.arcsin(np.sqrt(0.5)))


def test_all_null_empty_and_absent_columns_are_findings() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "nulls": [None] * 4, "c": list("abab")})
    all_null = pd.DataFrame({"x": [np.nan] * 4, "nulls": [None] * 4, "c": [None] * 4})
    report = drift(reference, all_null)
    assert report.columns["x"].note == "current column has no values (all missing)"
    assert report.columns["x"].missing_drift_detected
    assert report.columns["nulls"].note == "reference column has no values (all missing)"
    assert not report.columns["nulls"].drift_detected
    empty = drift(reference, reference.iloc[:0])
    assert all(col.note == "current window is empty" for col in empty.columns.values())
    assert empty.drifted_columns == [] and empty.n_current == 0
    absent = drift(reference, reference[["x"]])
    assert absent.columns["c"].missing_share_current == 1.0
    assert drift(reference.iloc[:0], reference).columns["x"].note == "reference window is empty"


def test_mixed_types_inf_nullable_and_bool_columns_do_not_crash() -> None:
    reference = pd.DataFrame({
        "mixed": [1, "a", 2.5, None, {"k": 1}, b"x"] * 20,
        "inf": [1.0, np.inf, -np.inf, np.nan, 2.0, 3.0] * 20,
        "nullable": pd.array([1, None, 3, 4, 5, 6] * 20, dtype="Int64"),
        "flag": [True, False, True, True, False, True] * 20,
        "cat": pd.Categorical(list("xyzxyz") * 20),
    })
    current = reference.sample(frac=1.0, random_state=1).reset_index(drop=True)
    report = drift(reference, current, kinds={"inf": "numeric"})
    assert report.drifted_columns == []
    assert report.columns["inf"].missing_share_reference == pytest.approx(0.5)
    assert report.columns["flag"].kind == "categorical"
    numeric_mixed = drift(reference, current, kinds={"mixed": "numeric"}).columns["mixed"]
    assert numeric_mixed.kind == "numeric" and numeric_mixed.n_reference == 40
    json.dumps(report.to_dict(), allow_nan=False)


def test_methods_are_selectable_per_column_and_errors_say_what_to_do(
        windows_small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = windows_small
    report = drift(reference, current, ["mean_shift", "cat_shift"],
                   {"mean_shift": "psi", "cat_shift": "kl"}, thresholds={"mean_shift": 0.5})
    assert [c.method for c in report.columns.values()] == ["psi", "kl"]
    assert report.columns["mean_shift"].threshold == 0.5
    with pytest.raises(InvalidInputError, match="does not apply to categorical") as info:
        drift(reference, current, method="ks")
    assert "chi2" in (info.value.hint or "")
    with pytest.raises(InvalidInputError, match="Unknown drift method 't-test'"):
        drift(reference, current, method={"normal": "t-test"})
    with pytest.raises(InvalidInputError, match="not in the reference"):
        drift(reference, current, columns=["nope"])
    with pytest.raises(InvalidInputError, match="threshold_share"):
        drift(reference, current, threshold_share=0.0)


def test_report_frame_and_dict() -> None:
    reference, current = make_window(300, shifted=False, seed=1), make_window(300, shifted=True, seed=2)
    report = drift(reference, current)
    frame = report.to_frame()
    assert list(frame.index) == list(reference.columns)
    assert frame["drift_detected"].sum() == len(report.drifted_columns)
    data = report.to_dict()
    assert data["drifted_columns"] == report.drifted_columns
    assert data["columns"]["mean_shift"]["method"] == "ks"
    json.dumps(data, allow_nan=False)
