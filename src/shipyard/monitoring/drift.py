"""Drift between a reference and a current window, per column and for the whole dataset.

``drift(reference, current)`` works on raw frames; ``drift_from_profiles`` on stored window
profiles, with the same tests on the same bins. Defaults follow Evidently's: with at most
1,000 reference rows, Kolmogorov-Smirnov (numeric) and chi-square (categorical); above,
Wasserstein distance normed by the reference std and Jensen-Shannon distance.

Beyond the value test, each column carries a missing-share signal (nulls, NaN, inf and
values of the wrong type): a jump is drift on its own even when the remaining values match.
It fires when a two-proportion z-test says p < 0.05 *and* Cohen's h >= 0.2, so big
samples do not flag trivial changes. Categorical slots keep the reference's frequent values
and group the rest with unseen ones into "other" (see ``group_categories``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.drift_tests import (
    METHODS,
    NumericSample,
    TestResult,
    nonempty_slots,
    two_proportion_test,
)
from shipyard.monitoring.profiles import (
    CategoricalProfile,
    ColumnProfile,
    Kind,
    NumericProfile,
    Profile,
    profile_frame,
    resolve_kinds,
    select_columns,
)

SMALL_SAMPLE_ROWS = 1_000
"""At most this many reference rows: p-value tests (KS, chi-square) by default."""
EXACT_MAX_ROWS = 100_000
"""Reference plus current rows up to which KS and Wasserstein run on raw values, not bins."""
MISSING_ALPHA = 0.05
MISSING_MIN_EFFECT = 0.2
"""Cohen's h a missing-share change must reach (0 -> 1%, 1% -> 5%, 10% -> 20% all do)."""
MIN_CATEGORY_COUNT = 5
"""A category needs this many reference rows to keep a slot of its own (chi-square's rule)."""
MIN_CATEGORY_SHARE = 0.001
MAX_TEST_CATEGORIES = 100
NOISE_BUDGET = 0.02
"""Distance tests keep k slots with (k - 1)(1/n + 1/m) <= this, so that two samples of one
distribution score ~0.05 JS distance (~0.02 PSI) from noise alone, half the threshold."""

MethodArg = str | Mapping[str, str] | None


@dataclass(frozen=True)
class ColumnDrift:
    """The drift findings for one column."""

    column: str
    kind: Kind
    method: str
    statistic: float
    """Test statistic or distance; NaN when a window had no values to test."""
    p_value: float | None
    effect_size: float | None
    threshold: float
    value_drift_detected: bool
    missing_share_reference: float
    missing_share_current: float
    missing_p_value: float | None
    missing_effect_size: float
    """Cohen's h of the missing shares."""
    missing_drift_detected: bool
    unseen_share: float | None
    """Categorical: share of current values outside the reference's vocabulary."""
    n_reference: int
    n_current: int
    """Values tested (rows less missing ones)."""
    note: str | None = None

    @property
    def drift_detected(self) -> bool:
        """Values drifted or the missing share jumped."""
        return self.value_drift_detected or self.missing_drift_detected


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift findings and the dataset verdict."""

    columns: dict[str, ColumnDrift]
    threshold_share: float
    n_reference: int
    n_current: int

    @property
    def drifted_columns(self) -> list[str]:
        """Columns whose values drifted or whose missing share jumped."""
        return [name for name, col in self.columns.items() if col.drift_detected]

    @property
    def share_drifted(self) -> float:
        """Share of the columns that drifted."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """True when the share of drifted columns reaches ``threshold_share``."""
        return bool(self.columns) and self.share_drifted >= self.threshold_share

    def to_frame(self) -> pd.DataFrame:
        """One row per column."""
        rows = [{**asdict(col), "drift_detected": col.drift_detected} for col in self.columns.values()]
        return pd.DataFrame(rows).set_index("column") if rows else pd.DataFrame()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (non-finite numbers become None)."""
        columns = {name: {key: _jsonable(value) for key, value in
                          {**asdict(col), "drift_detected": col.drift_detected}.items()}
                   for name, col in self.columns.items()}
        return {"dataset_drift": self.dataset_drift, "share_drifted": self.share_drifted,
                "threshold_share": self.threshold_share, "drifted_columns": self.drifted_columns,
                "n_reference": self.n_reference, "n_current": self.n_current, "columns": columns}


def _jsonable(value: object) -> object:
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def drift(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None = None,
          method: MethodArg = None, *, threshold_share: float = 0.5,
          thresholds: Mapping[str, float] | None = None,
          kinds: Mapping[str, str] | None = None) -> DriftReport:
    """Compare two frames column by column.

    Args:
        reference: The baseline window (e.g. the training set).
        current: The window to check; columns it lacks count as all missing.
        columns: Columns to compare (default: all of the reference's).
        method: One test for every column, or a dict column -> test; the rest get the
            defaults. Names: ks, chi2, wasserstein, jensenshannon, psi, kl.
        threshold_share: The dataset drifts when at least this share of columns drifts.
        thresholds: Column -> threshold (alpha for ks and chi2), overriding the method's own.
        kinds: Column -> "numeric" or "categorical", overriding the dtype.
    """
    names = select_columns(reference, columns)
    column_kinds = resolve_kinds(reference, names, kinds)
    keep_values = len(reference) + len(current) <= EXACT_MAX_ROWS
    ref_profile, ref_values = profile_frame(reference, column_kinds, keep_values=keep_values)
    cur_profile, cur_values = profile_frame(current, column_kinds, ref_profile,
                                            keep_values=keep_values)
    return _compare(ref_profile, cur_profile, method, threshold_share, thresholds,
                    ref_values, cur_values)


def drift_from_profiles(reference: Profile, current: Profile, method: MethodArg = None, *,
                        threshold_share: float = 0.5,
                        thresholds: Mapping[str, float] | None = None) -> DriftReport:
    """Compare two window profiles (built on the same reference) without the raw rows."""
    missing = [name for name in reference.columns if name not in current.columns]
    if missing:
        raise InvalidInputError(f"The current profile lacks columns {missing!r}.",
                                hint="Build it with build_profile(frame, reference=<reference profile>).")
    return _compare(reference, current, method, threshold_share, thresholds, {}, {})


def _compare(reference: Profile, current: Profile, method: MethodArg, threshold_share: float,
             thresholds: Mapping[str, float] | None, ref_values: Mapping[str, np.ndarray],
             cur_values: Mapping[str, np.ndarray]) -> DriftReport:
    if not 0.0 < threshold_share <= 1.0:
        raise InvalidInputError(f"threshold_share must be in (0, 1], got {threshold_share!r}.",
                                hint="0.5 flags the dataset when half of the columns drift.")
    methods = _resolve_methods(reference, method)
    results = {}
    for name, ref_col in reference.columns.items():
        chosen = methods[name]
        threshold = (thresholds or {}).get(name, METHODS[chosen].threshold)
        results[name] = _compare_column(name, ref_col, current.columns[name], chosen, threshold,
                                        ref_values.get(name), cur_values.get(name))
    return DriftReport(results, threshold_share, reference.n_rows, current.n_rows)


def default_method(kind: Kind, n_reference_rows: int) -> str:
    """Evidently's defaults: p-value tests on small references, distances on large ones."""
    small = n_reference_rows <= SMALL_SAMPLE_ROWS
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    return "chi2" if small else "jensenshannon"


def _resolve_methods(reference: Profile, method: MethodArg) -> dict[str, str]:
    chosen: dict[str, str] = {}
    per_column = method if isinstance(method, Mapping) else {}
    for name, col in reference.columns.items():
        given = method if isinstance(method, str) else per_column.get(name)
        name_of_test = given or default_method(col.kind, reference.n_rows)
        spec = METHODS.get(name_of_test)
        if spec is None:
            raise InvalidInputError(f"Unknown drift method {name_of_test!r} for column {name!r}.",
                                    hint=f"Use one of {sorted(METHODS)}.")
        if getattr(spec, col.kind) is None:
            fits = sorted(key for key, value in METHODS.items() if getattr(value, col.kind))
            raise InvalidInputError(
                f"Method {name_of_test!r} does not apply to {col.kind} column {name!r}.",
                hint=f"For {col.kind} columns use one of {fits}; pass a dict to choose per column.")
        chosen[name] = name_of_test
    unknown = [key for key in per_column if key not in reference.columns]
    if unknown:
        raise InvalidInputError(f"Methods given for unknown columns {unknown!r}.",
                                hint=f"Known columns: {list(reference.columns)!r}.")
    return chosen


def _missing_signal(ref: ColumnProfile, cur: ColumnProfile) -> tuple[float, float, TestResult]:
    """Missing shares of both windows, and the test of their difference (effect: Cohen's h)."""
    share_ref = 1 - ref.n_values / ref.n_rows if ref.n_rows else float("nan")
    share_cur = 1 - cur.n_values / cur.n_rows if cur.n_rows else float("nan")
    if not (ref.n_rows and cur.n_rows):
        return share_ref, share_cur, TestResult(float("nan"), None, 0.0)
    return share_ref, share_cur, two_proportion_test(
        ref.n_rows - ref.n_values, ref.n_rows, cur.n_rows - cur.n_values, cur.n_rows)


def group_categories(ref: CategoricalProfile, cur: CategoricalProfile, uses_p_value: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Count vectors over the kept categories plus one "other" slot (rare, unseen, beyond top-k)."""
    vocab = ref.counts[:-1]
    n, m = max(ref.n_values, 1), max(cur.n_values, 1)
    max_slots = MAX_TEST_CATEGORIES
    if not uses_p_value:
        max_slots = int(np.clip(1 + NOISE_BUDGET / (1 / n + 1 / m), 2, MAX_TEST_CATEGORIES))
    order = np.argsort(-vocab, kind="stable")[: max_slots - 1]
    keep = np.zeros(vocab.size, dtype=bool)
    keep[order] = True
    keep &= vocab >= max(MIN_CATEGORY_COUNT, MIN_CATEGORY_SHARE * n)
    return nonempty_slots(np.append(vocab[keep], ref.n_values - vocab[keep].sum()),
                          np.append(cur.counts[:-1][keep], cur.n_values - cur.counts[:-1][keep].sum()))


def _empty_note(ref: ColumnProfile, cur: ColumnProfile) -> str | None:
    if ref.n_rows == 0:
        return "reference window is empty"
    if cur.n_rows == 0:
        return "current window is empty"
    if ref.n_values == 0:
        return "reference column has no values (all missing)"
    if cur.n_values == 0:
        return "current column has no values (all missing)"
    return None


def _compare_column(name: str, ref: ColumnProfile, cur: ColumnProfile, method: str,
                    threshold: float, ref_values: np.ndarray | None,
                    cur_values: np.ndarray | None) -> ColumnDrift:
    spec = METHODS[method]
    share_ref, share_cur, missing = _missing_signal(ref, cur)
    missing_drift = (missing.p_value is not None and missing.p_value < MISSING_ALPHA
                     and abs(missing.effect_size or 0.0) >= MISSING_MIN_EFFECT)
    unseen = None
    if isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile) and cur.n_values:
        unseen = float(cur.counts[-1] / cur.n_values)
    note = _empty_note(ref, cur)
    result = TestResult(float("nan"))
    if note is None:
        if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile) and spec.numeric:
            result = spec.numeric(NumericSample(ref, cur, ref_values, cur_values))
        elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile) \
                and spec.categorical:
            result = spec.categorical(*group_categories(ref, cur, spec.uses_p_value))
    return ColumnDrift(
        column=name, kind=ref.kind, method=method, statistic=result.statistic,
        p_value=result.p_value, effect_size=result.effect_size, threshold=threshold,
        value_drift_detected=note is None and spec.is_drift(result, threshold),
        missing_share_reference=share_ref, missing_share_current=share_cur,
        missing_p_value=missing.p_value, missing_effect_size=float(missing.effect_size or 0.0),
        missing_drift_detected=bool(missing_drift), unseen_share=unseen,
        n_reference=ref.n_values, n_current=cur.n_values, note=note)
