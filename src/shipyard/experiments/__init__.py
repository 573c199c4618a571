"""Experiments: deterministic assignment, the statistics that decide A/B tests, and the
experiment lifecycle (`project.experiments`: create, start, analyze, conclude)."""

from __future__ import annotations

from shipyard.experiments.assignment import assign
from shipyard.experiments.spec import Experiment, Guardrail, Metric

__all__ = ["Experiment", "Guardrail", "Metric", "assign"]
