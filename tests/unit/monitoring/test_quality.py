from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring import build_profile, data_quality


def test_quality_facts_of_a_broken_window() -> None:
    reference = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0, 5.0] * 4,
                              "country": ["fr", "de", "fr", "us", "de"] * 4,
                              "score": np.linspace(0, 1, 20)})
    current = pd.DataFrame({"amount": [0.5, 2.0, np.nan, 9.0, np.inf, "oops", 3.0, 4.0, None, 1.0],
                            "country": ["fr", "xx", "yy", None, "de", "fr", "fr", "de", "us", "fr"],
                            "score": [0.3] * 10})
    report = data_quality(reference, current)
    amount, country, score = (report.columns[name] for name in ("amount", "country", "score"))
    assert amount.missing_share == pytest.approx(0.2)  # NaN and None
    assert amount.type_violation_share == pytest.approx(0.1)  # "oops"
    assert amount.infinite_share == pytest.approx(0.1)
    assert amount.out_of_range_share == pytest.approx(2 / 6)  # 0.5 and 9.0 of six finite values
    assert country.unseen_share == pytest.approx(2 / 9) and country.missing_share == pytest.approx(0.1)
    assert score.is_constant and report.constant_columns == ["score"]
    assert not amount.is_constant and amount.missing_share_reference == 0
    json.dumps(report.to_dict(), allow_nan=False)
    assert list(report.to_frame().index) == ["amount", "country", "score"]


def test_quality_from_profiles_equals_quality_from_frames() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=1_000), "c": rng.choice(list("abc"), 1_000)})
    current = pd.DataFrame({"x": rng.normal(0.5, 1, 800), "c": rng.choice(list("abcd"), 800)})
    ref_profile = build_profile(reference)
    from_profiles = data_quality(ref_profile, build_profile(current, reference=ref_profile))
    assert from_profiles.to_dict() == data_quality(reference, current).to_dict()


def test_all_null_and_empty_windows() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]})
    report = data_quality(reference, pd.DataFrame({"x": [None, None], "c": [None, None]}))
    assert report.columns["x"].missing_share == 1.0 and not report.columns["x"].is_constant
    empty = data_quality(reference, reference.iloc[:0])
    assert np.isnan(empty.columns["x"].missing_share) and empty.n_rows == 0
