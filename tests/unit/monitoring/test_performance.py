from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring import CBPE, classification_metrics, regression_metrics


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    score = np.round(rng.beta(2, 5, 3_000), 3)  # rounding makes ties
    return (rng.random(3_000) < score).astype(float), score


def test_classification_metrics_match_sklearn(scored: tuple[np.ndarray, np.ndarray]) -> None:
    truth, score = scored
    result = classification_metrics(truth, score, threshold=0.3)
    predicted = score >= 0.3
    assert result.n_labeled == 3_000 and result.n_positive == int(truth.sum())
    assert result.auc == pytest.approx(metrics.roc_auc_score(truth, score), abs=1e-12)
    assert result.log_loss == pytest.approx(metrics.log_loss(truth, score), abs=1e-12)
    assert result.precision == pytest.approx(metrics.precision_score(truth, predicted), abs=1e-12)
    assert result.recall == pytest.approx(metrics.recall_score(truth, predicted), abs=1e-12)
    assert result.f1 == pytest.approx(metrics.f1_score(truth, predicted), abs=1e-12)
    assert result.accuracy == pytest.approx(metrics.accuracy_score(truth, predicted), abs=1e-12)
    bins = [b for b in result.calibration if b.n_rows]
    expected_ece = sum(b.n_rows * abs(b.mean_score - b.positive_rate) for b in bins) / 3_000
    assert result.ece == pytest.approx(expected_ece) and result.ece < 0.05  # calibrated by design
    json.dumps(result.to_dict())


def test_unlabeled_rows_are_dropped_and_counted(scored: tuple[np.ndarray, np.ndarray]) -> None:
    truth, score = scored
    partial = truth.copy()
    partial[10:] = np.nan
    result = classification_metrics(partial, score)
    assert result.n_labeled == 10
    assert np.isnan(classification_metrics([], []).auc)
    with pytest.raises(InvalidInputError, match="0 or 1"):
        classification_metrics([0, 2], [0.1, 0.2])


def test_regression_metrics() -> None:
    result = regression_metrics([1.0, 2.0, np.nan, 4.0], [1.5, 1.0, 3.0, 5.0])
    assert result.n_labeled == 3
    assert result.rmse == pytest.approx(np.sqrt((0.25 + 1 + 1) / 3))
    assert result.mae == pytest.approx(2.5 / 3) and result.bias == pytest.approx(0.5 / 3)
    assert regression_metrics([], []).n_labeled == 0


def test_cbpe_estimates_match_realized_performance_on_calibrated_data() -> None:
    """Scores are a monotone distortion of the true probability; the window's mix shifts."""
    rng = np.random.default_rng(1)

    def window(n: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        prob = rng.beta(a, b, n)
        score = prob**0.5  # miscalibrated on purpose: isotonic calibration must undo it
        return score, (rng.random(n) < prob).astype(float)

    ref_score, ref_truth = window(20_000, 2, 5)
    estimator = CBPE(threshold=0.6).fit(ref_score, ref_truth)
    cur_score, cur_truth = window(20_000, 3, 3)  # covariate shift: more positives
    estimated = estimator.estimate(cur_score)
    realized = classification_metrics(cur_truth, cur_score, threshold=0.6)
    for name in ("accuracy", "precision", "recall", "f1", "auc"):
        assert getattr(estimated, name) == pytest.approx(getattr(realized, name), abs=0.02), name
    assert estimated.n_rows == 20_000


def test_cbpe_must_be_fitted_and_needs_both_classes() -> None:
    with pytest.raises(InvalidInputError, match="not fitted") as info:
        CBPE().estimate([0.1, 0.2])
    assert "fit(" in (info.value.hint or "")
    with pytest.raises(InvalidInputError, match="both classes"):
        CBPE().fit([0.1, 0.2], [1, 1])
