"""Time splits: later splits only hold later times, ties stay together, late labels go."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.training import SplitSpec, split_by_time
from shipyard.training.split import as_split_spec

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def frame(n: int = 1_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # few distinct times, so many rows share a timestamp at every cutoff
    times = T0 + pd.to_timedelta(rng.integers(0, 40, n), unit="h")
    return pd.DataFrame({"event_timestamp": times, "row": np.arange(n),
                         "label_timestamp": times + pd.to_timedelta(rng.integers(0, 72, n),
                                                                    unit="h")})


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fractions", [(0.7, 0.15, 0.15), (0.5, 0.5), (0.34, 0.33, 0.33)])
def test_splits_never_mix_times(seed: int, fractions: tuple[float, ...]) -> None:
    rows = frame(seed=seed).sample(frac=1.0, random_state=seed)  # shuffled input
    split = split_by_time(rows, fractions=fractions)
    parts = [p for p in (split.train, split.validation, split.test) if len(p)]
    for earlier, later in zip(parts, parts[1:], strict=False):
        assert earlier.event_timestamp.max() < later.event_timestamp.min()
    for part in parts:
        assert part.event_timestamp.is_monotonic_increasing
    assert sorted(pd.concat(parts).row) == list(range(len(rows)))
    for cutoff, part in zip(split.cutoffs, parts[1:], strict=False):
        assert part.event_timestamp.min() >= cutoff
    shares = [len(p) / len(rows) for p in parts]
    assert all(abs(s - f) < 0.1 for s, f in zip(shares, fractions, strict=False))


def test_explicit_cutoffs_and_two_way_splits() -> None:
    rows = frame()
    cut = T0 + pd.Timedelta(hours=30)
    split = split_by_time(rows, cutoffs=[cut.isoformat()])
    assert split.test.empty and split.cutoffs == (cut.to_pydatetime(),)
    assert (split.train.event_timestamp < cut).all() and (split.validation.event_timestamp >= cut).all()
    assert len(split.train) + len(split.validation) == len(rows)
    naive = rows.assign(event_timestamp=rows.event_timestamp.dt.tz_localize(None))
    assert split_by_time(naive, cutoffs=[cut]).sizes == split.sizes  # naive means UTC


def test_late_labels_are_dropped_from_training_only_when_asked() -> None:
    rows = frame()
    kept = split_by_time(rows)
    split = split_by_time(rows, label_timestamp="label_timestamp")
    cutoff = pd.Timestamp(split.cutoffs[0])
    late = (kept.train.label_timestamp > cutoff).sum()
    assert late > 0 and split.dropped_late_labels == late
    assert (split.train.label_timestamp <= cutoff).all()
    assert len(split.train) == len(kept.train) - late
    pd.testing.assert_frame_equal(split.validation, kept.validation)


def test_specs_from_fractions_cutoffs_or_defaults() -> None:
    assert as_split_spec(None) == SplitSpec()
    assert as_split_spec([0.8, 0.2]).fractions == (0.8, 0.2)
    spec = as_split_spec(["2026-03-02", "2026-03-03"])
    assert spec.fractions is None and spec.cutoffs == (T0 + pd.Timedelta(days=1),
                                                       T0 + pd.Timedelta(days=2))
    assert spec.apply(frame()).sizes == split_by_time(frame(), cutoffs=spec.cutoffs).sizes


@pytest.mark.parametrize(("options", "message"), [
    ({"fractions": (0.5, 0.6)}, r"must be 2 or 3 shares summing to 1"),
    ({"fractions": (1.0,)}, r"must be 2 or 3 shares"),
    ({"cutoffs": ["2026-03-03", "2026-03-02"]}, r"one or two increasing times"),
    ({"timestamp": "ts"}, r"no timestamp column 'ts'"),
    ({"timestamp": "row"}, r"holds int64, not timestamps"),
])
def test_bad_split_arguments_say_what_to_do(options: dict[str, object], message: str) -> None:
    with pytest.raises(sy.InvalidInputError, match=message) as info:
        split_by_time(frame(), **options)  # type: ignore[arg-type]
    assert info.value.hint
