"""Fixed bins from a reference sample, counted by sorting.

Every window of a column is counted on the same bins, derived once from the reference:
exact quantile edges of its finite values, the last edge nudged above the maximum so that
every bin is half-open ``[e_i, e_i+1)``. A slot vector holds the underflow count (below the
first edge), one count per bin, then the overflow count (at or above the last edge).

Counting sorts the column and looks the edges up in it. With numpy's vectorised sort that is
~12 ms per million values here, several times faster than ``np.searchsorted`` of unsorted
values into the edges (~55 ms, branch mispredictions) or a uniform-grid lookup (~18 ms and
far slower on heavy tails); and the sorted values give exact quantiles and extremes for free.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BINS = 200
"""Fine bins per numeric column: 0.5% of the reference each."""
COARSE_BINS = 10
"""Reference-decile groups for the count tests (PSI, KL, chi-square, JS) on numeric columns."""


_CHUNK = 1 << 16


def sorted_finite(values: np.ndarray, scratch: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """The finite values sorted (a view into a sorted copy), and the number of NaN.

    With ``scratch`` (at least as long as ``values``) the copy goes there: reusing one buffer
    per worker keeps the process from growing its heap by a column per column.
    """
    if scratch is None:
        ordered = np.sort(values)
    else:
        ordered = scratch[: values.size]
        np.copyto(ordered, values)
        ordered.sort()
    # -inf sorts first; +inf, then NaN, last.
    start = int(np.searchsorted(ordered, -np.inf, side="right"))
    stop = int(np.searchsorted(ordered, np.inf, side="left"))
    n_nan = ordered.size - int(np.searchsorted(ordered, np.nan, side="left"))
    return ordered[start:stop], n_nan


def sum_squared_deviations(values: np.ndarray, mean: float) -> float:
    """Sum of (x - mean)^2, two-pass accurate, in cache-sized chunks (no large temporary)."""
    buffer = np.empty(min(values.size, _CHUNK))
    total = 0.0
    for start in range(0, values.size, _CHUNK):
        part = values[start:start + _CHUNK]
        chunk = np.subtract(part, mean, out=buffer[: part.size])
        # np.square + sum rather than np.dot: BLAS threads oversubscribe a busy machine.
        total += float(np.square(chunk, out=chunk).sum())
    return total


def sorted_quantiles(ordered: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(ordered, q)`` (linear method) for sorted input, bit for bit, without a sort."""
    virtual = (ordered.size - 1) * q  # numpy's virtual index for the linear method
    floor = np.floor(virtual)
    gamma = virtual - floor
    below = floor.astype(np.intp)
    above = np.where(virtual >= ordered.size - 1, below, below + 1)
    below = np.minimum(below, ordered.size - 1)
    above = np.minimum(above, ordered.size - 1)
    a, b = ordered[below], ordered[above]
    diff = b - a
    # numpy's _lerp: from the nearer end, so that the result is monotone in q.
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def quantile_edges(ordered: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Unique edges of ``n_bins`` quantile bins of sorted finite values (numpy's linear rule)."""
    if ordered.size == 0:
        return np.empty(0, dtype=np.float64)
    edges = sorted_quantiles(ordered, np.linspace(0.0, 1.0, n_bins + 1))
    # Half-open bins: the maximum must fall inside the last bin, not in the overflow slot.
    return np.unique(np.append(edges[:-1], np.nextafter(ordered[-1], np.inf)))


def sorted_counts(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Slot counts of sorted values: underflow, ``len(edges) - 1`` bins, overflow."""
    below = np.searchsorted(ordered, edges, side="left")
    return np.diff(below, prepend=0, append=ordered.size).astype(np.int64)


def sorted_sums(ordered: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of the sorted values in each slot of ``counts``."""
    sums = np.zeros(counts.size)
    if ordered.size == 0:
        return sums
    filled = counts > 0
    # Over the non-empty slots the starts strictly increase, as reduceat needs.
    sums[filled] = np.add.reduceat(ordered, (np.cumsum(counts) - counts)[filled])
    return sums


def coarsen(reference: np.ndarray, current: np.ndarray, n_groups: int = COARSE_BINS
            ) -> tuple[np.ndarray, np.ndarray]:
    """Merge fine bins into ~equal-reference-mass groups; underflow and overflow stay apart."""
    inner = reference[1:-1]
    total = inner.sum()
    if total == 0 or inner.size <= n_groups:
        return reference, current
    # Group by the reference mass at each bin's middle: robust to off-by-one quantile counts,
    # so fine quantile bins regroup into exactly the reference's deciles.
    mass_middle = np.cumsum(inner) - inner / 2
    group = np.minimum((mass_middle * n_groups) // total, n_groups - 1).astype(np.intp)
    slots = np.concatenate(([0], group + 1, [n_groups + 1]))
    return (np.bincount(slots, weights=reference, minlength=n_groups + 2),
            np.bincount(slots, weights=current, minlength=n_groups + 2))
