"""Experiments: deterministic assignment and the statistics that decide A/B tests."""

from __future__ import annotations

from shipyard.experiments.assignment import assign

__all__ = ["assign"]
