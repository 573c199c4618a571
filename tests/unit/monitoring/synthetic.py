"""Synthetic windows with known shifted columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

SHIFTED = ["mean_shift", "scale_shift", "cat_shift", "new_category"]
STABLE = ["normal", "lognormal", "counts", "cat_small", "cat_zipf", "with_nulls"]


def make_window(n: int, *, shifted: bool, seed: int) -> pd.DataFrame:
    """One window: four columns shift when ``shifted``, six never do."""
    rng = np.random.default_rng(seed)
    with_nulls = rng.normal(5.0, 2.0, n)
    with_nulls[rng.random(n) < 0.1] = np.nan
    cat_probs = np.array([0.5, 0.3, 0.2])
    new_probs = np.array([0.6, 0.4, 0.0])
    return pd.DataFrame({
        "mean_shift": rng.normal(0.6 if shifted else 0.0, 1.0, n),
        "scale_shift": rng.normal(0.0, 2.0 if shifted else 1.0, n),
        "cat_shift": rng.choice(["a", "b", "c"], n, p=cat_probs[::-1] if shifted else cat_probs),
        "new_category": rng.choice(["x", "y", "z"], n,
                                   p=np.array([0.45, 0.3, 0.25]) if shifted else new_probs),
        "normal": rng.normal(10.0, 3.0, n),
        "lognormal": rng.lognormal(1.0, 0.8, n),
        "counts": rng.poisson(4.0, n),
        "cat_small": rng.choice(["p", "q", "r", "s"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "cat_zipf": pd.Series(np.minimum(rng.zipf(1.5, n), 3_000)).map("z{}".format),
        "with_nulls": with_nulls,
    })
