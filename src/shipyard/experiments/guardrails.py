"""Guardrails watched while an experiment serves: error rate, p99 latency, prediction shift.

A `GuardrailMonitor` keeps a sliding window per variant (requests, server errors, latencies,
scores) and checks every treatment against the limits once both it and the control have
`min_samples` observations. The server records each request and rolls the experiment back
on the first breach.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from shipyard.experiments.spec import Guardrail

_PSI_BINS = 10
_PSI_FLOOR = 1e-4  # share given to an empty bin, so the log stays finite


def psi(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray,
        bins: int = _PSI_BINS) -> float:
    """Population stability index: ``Σ (c_i − r_i) ln(c_i / r_i)`` over quantile bins of both
    samples pooled (so a constant reference still separates from a shifted current), shares
    floored at 1e-4; 0 when either side is empty."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if not len(ref) or not len(cur):
        return 0.0
    edges = np.unique(np.quantile(np.concatenate([ref, cur]), np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    r, c = np.maximum(r, _PSI_FLOOR), np.maximum(c, _PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


@dataclass(frozen=True)
class Breach:
    """A guardrail a variant broke, with the value measured and on how many samples."""

    guardrail: Guardrail
    variant: str
    value: float
    samples: int

    @property
    def reason(self) -> str:
        g = self.guardrail
        return (f"Guardrail {g.metric} < {g.threshold:g} breached by {self.variant!r}: "
                f"{self.value:.4g} over {self.samples} requests.")


class _Window:
    def __init__(self, size: int) -> None:
        self.outcomes: deque[tuple[bool, float | None]] = deque(maxlen=size)  # (error, seconds)
        self.scores: deque[float] = deque(maxlen=size)
        self.since_check = 0


class GuardrailMonitor:
    """Sliding windows of the variants of one running experiment."""

    def __init__(self, guardrails: Iterable[Guardrail], control: str, *, window: int = 2000,
                 check_every: int = 20) -> None:
        self.guardrails = tuple(guardrails)
        self.control = control
        self.window = window
        self.check_every = check_every
        self._windows: dict[str, _Window] = {}

    def _of(self, variant: str) -> _Window:
        w = self._windows.get(variant)
        if w is None:
            w = self._windows[variant] = _Window(self.window)
        return w

    def record(self, variant: str, *, error: bool, seconds: float | None,
               scores: Iterable[float] = ()) -> bool:
        """Count one request (`seconds` None: not timed, e.g. a shadow that waited for its
        batch); True when a treatment's check is due (every `check_every`)."""
        w = self._of(variant)
        w.outcomes.append((error, seconds))
        w.scores.extend(scores)
        if variant == self.control or not self.guardrails:
            return False
        w.since_check += 1
        if w.since_check >= self.check_every:
            w.since_check = 0
            return True
        return False

    def check(self) -> list[Breach]:
        """Every guardrail each treatment breaks now (enough samples on both sides)."""
        control = self._of(self.control)
        breaches = []
        for variant, w in list(self._windows.items()):
            if variant == self.control:
                continue
            for g in self.guardrails:
                value, samples = self._measure(g, w, control)
                if value is not None and value > g.threshold:
                    breaches.append(Breach(g, variant, value, samples))
        return breaches

    def _measure(self, g: Guardrail, w: _Window, control: _Window) -> tuple[float | None, int]:
        n = len(w.outcomes)
        if g.metric == "error_rate":
            if n < g.min_samples:
                return None, n
            return sum(e for e, _ in w.outcomes) / n, n
        if g.metric == "p99_latency_ms":
            ok = [s for e, s in w.outcomes if not e and s is not None]
            if len(ok) < g.min_samples:
                return None, len(ok)
            return float(np.percentile(ok, 99)) * 1000, len(ok)
        if len(w.scores) < g.min_samples or len(control.scores) < g.min_samples:
            return None, len(w.scores)
        return psi(list(control.scores), list(w.scores)), len(w.scores)
