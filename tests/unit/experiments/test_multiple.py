"""Holm and Benjamini–Hochberg against statsmodels' multipletests."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.stats import adjust_p_values, benjamini_hochberg, holm

P_VALUE_SETS = [
    [0.01, 0.04, 0.03, 0.005, 0.20],
    [0.001, 0.001, 0.02, 0.02, 0.5, 1.0],  # ties and a 1
    [0.049],
    list(np.random.default_rng(3).uniform(0, 0.2, 12)),
]


@pytest.mark.parametrize("p_values", P_VALUE_SETS)
@pytest.mark.parametrize("method, reference", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjustment_matches_statsmodels(p_values: list[float], method: str, reference: str) -> None:
    rejected, adjusted, _, _ = multipletests(p_values, alpha=0.05, method=reference)
    r = adjust_p_values(p_values, method=method)  # type: ignore[arg-type]
    assert r.adjusted == pytest.approx(tuple(adjusted), abs=1e-12)
    assert r.rejected == tuple(bool(x) for x in rejected)
    assert r.method == method and r.p_values == tuple(p_values)


def test_named_functions_equal_the_dispatcher() -> None:
    p = P_VALUE_SETS[0]
    assert holm(p, alpha=0.1) == adjust_p_values(p, method="holm", alpha=0.1)
    assert benjamini_hochberg(p) == adjust_p_values(p, method="bh")


def test_bad_method_or_p_values_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="Unknown adjustment method 'bonferroni'") as info:
        adjust_p_values([0.1], method="bonferroni")  # type: ignore[arg-type]
    assert "holm" in (info.value.hint or "")
    with pytest.raises(InvalidInputError, match=r"must all lie in \[0, 1\]"):
        holm([0.1, 1.2])
