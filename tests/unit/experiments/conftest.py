"""Fixed raw data for the statistics tests: seeded, so every reference sees the same numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass(frozen=True)
class Arm:
    """One arm's raw per-unit data."""

    revenue: np.ndarray
    pre_revenue: np.ndarray
    converted: np.ndarray
    clicks: np.ndarray
    sessions: np.ndarray


def _arm(rng: np.random.Generator, n: int, lift: float) -> Arm:
    pre = rng.gamma(2.0, 5.0, n)
    sessions = rng.poisson(3.0, n).astype(float) + 1
    return Arm(
        revenue=0.7 * pre + rng.normal(3.0 * (1 + lift), 4.0, n),
        pre_revenue=pre,
        converted=(rng.random(n) < 0.12 * (1 + lift)).astype(float),
        clicks=rng.binomial(sessions.astype(int), 0.2 * (1 + lift)).astype(float),
        sessions=sessions,
    )


@pytest.fixture(scope="session")
def arms() -> tuple[Arm, Arm]:
    """(control, treatment) with a 10% lift in every metric and unequal arm sizes."""
    rng = np.random.default_rng(7)
    return _arm(rng, 1500, 0.0), _arm(rng, 1700, 0.10)
