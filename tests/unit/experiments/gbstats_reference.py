"""Fixed experiment data, and the same computation in Shipyard and in GrowthBook's gbstats.

``python -m tests.unit.experiments.gbstats_reference`` (with gbstats installed) rewrites
``data/gbstats_reference.json``: the cases' sufficient statistics and gbstats' results, so the
comparison also runs where gbstats cannot be installed (gbstats 0.8.0 pins pandas < 2 and
numpy < 2, which is why it is not a declared dev dependency; install it with --no-deps).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.experiments import stats

REFERENCE_FILE = Path(__file__).parent / "data" / "gbstats_reference.json"
Case = dict[str, Any]


# --- fixed data ----------------------------------------------------------------------------------

def _mean(x: np.ndarray) -> dict[str, Any]:
    return {"type": "mean", "n": len(x), "sum": float(x.sum()), "sum_squares": float(x @ x)}


def _proportion(x: np.ndarray) -> dict[str, Any]:
    return {"type": "proportion", "n": len(x), "conversions": float(x.sum())}


def _arms(seed: int) -> dict[str, dict[str, Any]]:
    """Summaries of each metric kind for control and treatment, from seeded simulated units."""
    rng = np.random.default_rng(seed)
    arms = {}
    for arm, n, lift in (("control", 4000, 0.0), ("treatment", 4200, 0.04)):
        pre = rng.gamma(2.0, 5.0, n)
        revenue = 0.8 * pre + rng.normal(2.0 * (1 + lift), 4.0, n)
        converted = (rng.random(n) < 0.10 * (1 + lift)).astype(float)
        pre_converted = np.where(rng.random(n) < 0.7, converted, (rng.random(n) < 0.1).astype(float))
        sessions = rng.poisson(3.0, n).astype(float) + 1
        clicks = rng.binomial(sessions.astype(int), 0.2 * (1 + lift)).astype(float)
        arms[arm] = {
            "mean": _mean(revenue),
            "proportion": _proportion(converted),
            "ratio": {"type": "ratio", "numerator": _mean(clicks), "denominator": _mean(sessions),
                      "cross_sum": float(clicks @ sessions)},
            "cuped": {"type": "cuped", "metric": _mean(revenue), "covariate": _mean(pre),
                      "cross_sum": float(revenue @ pre)},
            "cuped_proportion": {"type": "cuped", "metric": _proportion(converted),
                                 "covariate": _proportion(pre_converted),
                                 "cross_sum": float(converted @ pre_converted)},
        }
    return arms


def build_cases() -> list[Case]:
    """Every metric kind under every test, relative and absolute, with and without a prior."""
    arms = _arms(seed=20240611)
    tests: list[dict[str, Any]] = [
        {"test": "frequentist"}, {"test": "sequential"},
        {"test": "sequential", "tuning_n": 20000.0, "alpha": 0.1},
        {"test": "bayesian", "prior": None}, {"test": "bayesian", "prior": [0.0, 0.01]},
        {"test": "bayesian", "prior": None, "lower_is_better": True},
    ]
    cases = []
    for kind in arms["control"]:
        for options in tests:
            for relative in (True, False):
                name = "-".join([kind, *(str(v) for v in options.values()), "rel" if relative else "abs"])
                cases.append({"name": name, "control": arms["control"][kind],
                              "treatment": arms["treatment"][kind], "relative": relative, **options})
    return cases


# --- Shipyard -----------------------------------------------------------------------------------

def _component(d: dict[str, Any]) -> stats.MeanSummary | stats.ProportionSummary:
    if d["type"] == "proportion":
        return stats.ProportionSummary(d["n"], d["conversions"])
    return stats.MeanSummary(d["n"], d["sum"], d["sum_squares"])


_SUMMARIES: dict[str, Callable[[dict[str, Any]], stats.Summary]] = {
    "mean": _component,
    "proportion": _component,
    "ratio": lambda d: stats.RatioSummary(_component(d["numerator"]), _component(d["denominator"]),
                                          d["cross_sum"]),
    "cuped": lambda d: stats.CupedSummary(_component(d["metric"]), _component(d["covariate"]),
                                          d["cross_sum"]),
}


def summary(d: dict[str, Any]) -> stats.Summary:
    """A Shipyard summary from its JSON form."""
    return _SUMMARIES[d["type"]](d)


def shipyard_result(case: Case) -> dict[str, Any]:
    """The case computed by shipyard.experiments.stats, in the reference's layout."""
    c, t, rel = summary(case["control"]), summary(case["treatment"]), case["relative"]
    alpha = case.get("alpha", 0.05)
    if case["test"] == "bayesian":
        prior = stats.NormalPrior(*case["prior"]) if case["prior"] else None
        b = stats.bayesian_test(c, t, relative=rel, prior=prior, alpha=alpha,
                                lower_is_better=case.get("lower_is_better", False))
        return {"expected": b.effect, "ci": list(b.ci), "stddev": b.standard_deviation,
                "chance_to_win": b.chance_to_win, "risk": [b.risk_control, b.risk_treatment]}
    if case["test"] == "sequential":
        f = stats.sequential_test(c, t, relative=rel, alpha=alpha,
                                  tuning_n=case.get("tuning_n", stats.DEFAULT_TUNING_N))
    else:
        f = stats.frequentist_test(c, t, relative=rel, alpha=alpha)
    return {"expected": f.effect, "ci": list(f.ci), "stddev": f.standard_error, "p_value": f.p_value}


# --- gbstats ------------------------------------------------------------------------------------

def _gb_component(d: dict[str, Any]) -> Any:
    from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

    if d["type"] == "proportion":
        return ProportionStatistic(n=d["n"], sum=d["conversions"])
    return SampleMeanStatistic(n=d["n"], sum=d["sum"], sum_squares=d["sum_squares"])


def _gb_statistic(d: dict[str, Any]) -> Any:
    from gbstats.models.statistics import RatioStatistic, RegressionAdjustedStatistic

    if d["type"] == "ratio":
        return RatioStatistic(n=d["numerator"]["n"], m_statistic=_gb_component(d["numerator"]),
                              d_statistic=_gb_component(d["denominator"]),
                              m_d_sum_of_products=d["cross_sum"])
    if d["type"] == "cuped":
        return RegressionAdjustedStatistic(n=d["metric"]["n"], post_statistic=_gb_component(d["metric"]),
                                           pre_statistic=_gb_component(d["covariate"]),
                                           post_pre_sum_of_products=d["cross_sum"], theta=0)
    return _gb_component(d)


def gbstats_result(case: Case) -> dict[str, Any]:
    """The case computed by gbstats (fresh statistics each time: gbstats sets CUPED's theta in place)."""
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
    from gbstats.frequentist.tests import (
        FrequentistConfig,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )

    a, b = _gb_statistic(case["control"]), _gb_statistic(case["treatment"])
    scale = "relative" if case["relative"] else "absolute"
    alpha = case.get("alpha", 0.05)
    if case["test"] == "bayesian":
        prior = (GaussianPrior(mean=case["prior"][0], variance=case["prior"][1], proper=True)
                 if case["prior"] else GaussianPrior())
        config = EffectBayesianConfig(difference_type=scale, prior_type=scale, prior_effect=prior,
                                      alpha=alpha, inverse=case.get("lower_is_better", False))
        r = EffectBayesianABTest(a, b, config).compute_result()
        return {"expected": r.expected, "ci": list(r.ci), "stddev": r.uplift.stddev,
                "chance_to_win": r.chance_to_win, "risk": list(r.risk)}
    if case["test"] == "sequential":
        seq = SequentialConfig(difference_type=scale, alpha=alpha,
                               sequential_tuning_parameter=case.get("tuning_n", 5000.0))
        r = SequentialTwoSidedTTest(a, b, seq).compute_result()
    else:
        r = TwoSidedTTest(a, b, FrequentistConfig(difference_type=scale, alpha=alpha)).compute_result()
    return {"expected": r.expected, "ci": list(r.ci), "stddev": r.uplift.stddev, "p_value": r.p_value}


def write_reference() -> None:
    """Recompute every case with gbstats and store inputs and results."""
    cases = [{**case, "gbstats": gbstats_result(case)} for case in build_cases()]
    body = {"_source": f"gbstats {version('gbstats')} results on seeded simulated data "
                       "(tests/unit/experiments/gbstats_reference.py).", "cases": cases}
    REFERENCE_FILE.write_text(json.dumps(body, indent=1) + "\n")


if __name__ == "__main__":
    write_reference()
