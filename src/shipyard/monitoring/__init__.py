"""Monitoring: drift, data quality and model performance, from raw windows or their profiles."""

from __future__ import annotations

from shipyard.monitoring.drift import ColumnDrift, DriftReport, drift, drift_from_profiles
from shipyard.monitoring.performance import (
    CBPE,
    ClassificationMetrics,
    EstimatedPerformance,
    RegressionMetrics,
    classification_metrics,
    regression_metrics,
)
from shipyard.monitoring.profiles import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    build_profile,
    merge_profiles,
)
from shipyard.monitoring.quality import ColumnQuality, QualityReport, data_quality

__all__ = [
    "CBPE",
    "CategoricalProfile",
    "ClassificationMetrics",
    "ColumnDrift",
    "ColumnQuality",
    "DriftReport",
    "EstimatedPerformance",
    "NumericProfile",
    "Profile",
    "QualityReport",
    "RegressionMetrics",
    "build_profile",
    "classification_metrics",
    "data_quality",
    "drift",
    "drift_from_profiles",
    "merge_profiles",
    "regression_metrics",
]
