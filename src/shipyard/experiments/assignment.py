"""Deterministic, sticky variant assignment, bucket for bucket the same as GrowthBook's SDKs.

A unit's variant is a function of the experiment's seed and the unit id alone, so every
server process and the batch engine agree without coordination. The scheme is GrowthBook's
published one (growthbook-python ``core.py``: ``fnv1a32``, ``gbhash``, ``getBucketRanges``,
``chooseVariation``, ``inNamespace``), so a team that already runs GrowthBook SDKs gets the
very same variant for the same experiment key and user id:

- hash version 2: ``n = fnv1a32(str(fnv1a32(seed + id))) % 10000 / 10000`` (10,000 buckets);
- hash version 1: ``n = fnv1a32(id + seed) % 1000 / 1000`` (GrowthBook's legacy default);
- variant ``i`` owns ``[c_i, c_i + coverage * w_i)`` where ``c_i = w_0 + ... + w_{i-1}``, so
  coverage shrinks each range from its start and a unit outside every range is in no variant.

Raising coverage therefore never moves a unit that was already in a variant, and changing
weights moves only the units whose bucket crosses a range boundary.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from functools import lru_cache

from shipyard.core.errors import InvalidInputError

__all__ = [
    "assign",
    "bucket_ranges",
    "choose_variation",
    "equal_weights",
    "fnv1a32",
    "in_namespace",
    "unit_hash",
    "unit_string",
]

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK32 = 0xFFFFFFFF
# GrowthBook accepts weight vectors summing to 1 within this tolerance, and uses them as given.
_WEIGHT_SUM_MIN = 0.99
_WEIGHT_SUM_MAX = 1.01
_JS_EXPONENT_FROM = 1e21  # JS String(number) switches to exponent notation here


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over UTF-16 code units, like the JS SDK's ``charCodeAt`` loop."""
    h = _FNV_OFFSET
    if text.isascii():
        units: Sequence[int] = text.encode()
    else:
        data = text.encode("utf-16-le", "surrogatepass")
        units = [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]
    for unit in units:
        h = ((h ^ unit) * _FNV_PRIME) & _MASK32
    return h


def _hash_v1(seed: str, value: str) -> float:
    return (fnv1a32(value + seed) % 1000) / 1000


def _hash_v2(seed: str, value: str) -> float:
    return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000


_HASHES = {1: _hash_v1, 2: _hash_v2}


def unit_hash(seed: str, value: str, *, version: int = 2) -> float:
    """GrowthBook's ``hash(seed, value, version)``: the unit's bucket in [0, 1)."""
    try:
        fn = _HASHES[version]
    except (KeyError, TypeError):
        raise InvalidInputError(
            f"Unknown hash version {version!r}.",
            hint=f"Use one of {sorted(_HASHES)}; 2 is GrowthBook's current scheme.",
        ) from None
    return fn(seed, value)


def unit_string(unit_id: str | int) -> str:
    """The text GrowthBook hashes for a unit id: JavaScript's ``String(id)``."""
    if isinstance(unit_id, str):
        return unit_id
    if isinstance(unit_id, numbers.Integral) and not isinstance(unit_id, bool):
        try:
            x = float(int(unit_id))  # JS numbers are doubles: 2**53 + 1 prints as 2**53
        except OverflowError:
            return ""
        if abs(x) < _JS_EXPONENT_FROM:
            return str(int(x))
        return repr(x)  # e.g. "1e+21", "1.2345e+22": the same shortest form as JS
    raise InvalidInputError(
        f"A unit id must be a string or an integer, not {type(unit_id).__name__} ({unit_id!r}).",
        hint="Pass the entity key, e.g. assign('exp', customer_id, ...) with an int or str id.",
    )


def equal_weights(n_variations: int) -> list[float]:
    """GrowthBook's ``getEqualWeights``: ``n`` weights of ``1/n`` (empty for ``n < 1``)."""
    if n_variations < 1:
        return []
    return [1 / n_variations for _ in range(n_variations)]


def _weights_are_valid(weights: Sequence[float] | None, n_variations: int) -> bool:
    if weights is None or len(weights) != n_variations:
        return False
    if not all(isinstance(w, numbers.Real) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
               for w in weights):
        return False
    return _WEIGHT_SUM_MIN <= sum(weights) <= _WEIGHT_SUM_MAX


def bucket_ranges(
    n_variations: int, *, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """GrowthBook's ``getBucketRanges``: ``[c_i, c_i + coverage * w_i)`` per variant.

    Like GrowthBook (and unlike :func:`assign`, which rejects such input) coverage is clamped
    to [0, 1] and an invalid weight vector is replaced by equal weights.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    used = equal_weights(n_variations)
    if weights is not None and _weights_are_valid(weights, n_variations):
        used = list(weights)
    cumulative = 0.0
    ranges = []
    for w in used:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int | None:
    """GrowthBook's ``chooseVariation``: the range holding ``n`` (half-open), else None."""
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return None


def in_namespace(unit_id: str | int, namespace: tuple[str, float, float]) -> bool:
    """GrowthBook's ``inNamespace``: whether the unit's namespace bucket is in [start, end)."""
    name, start, end = namespace
    n = _hash_v1("__" + name, unit_string(unit_id))
    return start <= n < end


def _bad_weights(weights: object) -> InvalidInputError:
    return InvalidInputError(
        f"Weights {weights!r} are not a split of traffic.",
        hint=f"Give one non-negative fraction per variant summing to 1 "
        f"(within [{_WEIGHT_SUM_MIN}, {_WEIGHT_SUM_MAX}]), e.g. [0.5, 0.5].",
    )


def _weights_key(weights: Sequence[float]) -> tuple[float, ...]:
    try:
        key = tuple(weights)
        hash(key)
    except TypeError:
        raise _bad_weights(weights) from None
    return key


def _check_weights(weights: Sequence[float]) -> None:
    if len(weights) == 0 or not _weights_are_valid(weights, len(weights)):
        raise _bad_weights(list(weights))


def _check_coverage(coverage: float) -> None:
    if not (isinstance(coverage, numbers.Real) and not isinstance(coverage, bool)
            and 0.0 <= coverage <= 1.0):
        raise InvalidInputError(
            f"Coverage {coverage!r} is not a fraction of traffic.",
            hint="Use a number from 0 (no unit enrolled) to 1 (every unit enrolled).",
        )


@lru_cache(maxsize=4096)
def _checked_ranges(weights: tuple[float, ...], coverage: float) -> tuple[tuple[float, float], ...]:
    # Cached: a server assigns every request of an experiment with the same weights.
    _check_weights(weights)
    return tuple(bucket_ranges(len(weights), coverage=coverage, weights=weights))


def assign(
    experiment_key: str,
    unit_id: str | int,
    weights: Sequence[float],
    *,
    coverage: float = 1.0,
    seed: str | None = None,
    hash_version: int = 2,
) -> int | None:
    """The variant index of a unit, or None when it is outside coverage.

    ``n = hash(seed or experiment_key, String(unit_id), hash_version)``, then the variant whose
    :func:`bucket_ranges` range holds ``n``. Weights must sum to 1 within GrowthBook's
    tolerance (0.99 to 1.01) and are used as given. Units GrowthBook never buckets (an empty
    string, the number 0) are in no variant either: None.
    """
    if not isinstance(experiment_key, str) or not experiment_key:
        raise InvalidInputError(
            f"Experiment key {experiment_key!r} must be a non-empty string.",
            hint="Use the experiment's name, e.g. assign('fraud-v2-vs-v1', unit_id, [0.5, 0.5]).",
        )
    _check_coverage(coverage)
    ranges = _checked_ranges(_weights_key(weights), coverage)
    value = unit_string(unit_id)
    if not value or (not isinstance(unit_id, str) and int(unit_id) == 0):
        return None
    return choose_variation(unit_hash(seed or experiment_key, value, version=hash_version), ranges)
