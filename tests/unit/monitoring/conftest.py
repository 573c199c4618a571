"""Fixtures shared by the monitoring tests."""

from __future__ import annotations

import pandas as pd
import pytest

from .synthetic import make_window


@pytest.fixture(scope="session")
def windows_large() -> tuple[pd.DataFrame, pd.DataFrame]:
    """5,000-row windows: the distance tests run by default."""
    return make_window(5_000, shifted=False, seed=1), make_window(5_000, shifted=True, seed=2)


@pytest.fixture(scope="session")
def windows_small() -> tuple[pd.DataFrame, pd.DataFrame]:
    """600-row windows: KS and chi-square run by default."""
    return make_window(600, shifted=False, seed=3), make_window(600, shifted=True, seed=4)
