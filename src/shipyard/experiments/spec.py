"""What an experiment is: variants, split, unit, mode, metrics, guardrails and ramp schedule.

Pure values (no I/O): the store keeps them as JSON, the server asks them which variant a unit
is in at a given time. The first variant is the control. In canary mode the treatment's
share follows the ramp schedule from the start time, so every server process computes the
same split from the clock alone; a rolled-back experiment sends everything to control.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from shipyard.core.errors import InvalidInputError
from shipyard.experiments.assignment import assign, unit_hash, unit_string

Mode = Literal["ab", "canary", "shadow"]
MODES: tuple[str, ...] = ("ab", "canary", "shadow")
STATUSES = ("draft", "running", "paused", "stopped", "rolled_back", "concluded")
GUARDRAIL_METRICS = ("error_rate", "p99_latency_ms", "prediction_psi")
METRIC_KINDS = ("mean", "proportion", "ratio")
BUILTIN_METRICS = {"log_loss": False, "brier": False}  # per labeled prediction; lower is better
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_GUARDRAIL = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|<)\s*([0-9.eE+\-]+)\s*$")


def _mapping(cls: type, value: dict[str, Any], what: str, hint: str) -> dict[str, Any]:
    """`value` as keyword arguments of the dataclass `cls`; InvalidInputError for unknown or
    missing keys."""
    import dataclasses

    fields = dataclasses.fields(cls)
    known = {f.name for f in fields}
    required = [f.name for f in fields if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    unknown = sorted(set(value) - known, key=str)
    missing = [k for k in required if k not in value]
    if unknown or missing:
        problem = f"has unknown key {unknown[0]!r}" if unknown else f"lacks key {missing[0]!r}"
        raise InvalidInputError(f"{what} {problem}.",
                                hint=f"Keys: {', '.join(f.name for f in fields)}. {hint}")
    return dict(value)


def _number(value: Any, what: str, hint: str) -> float:
    """`value` as a float; InvalidInputError if it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what}: {value!r} is not a number.", hint=hint) from None


def in_shadow_sample(key: str, unit_id: str | int, rate: float) -> bool:
    """Whether a unit is among the `rate` share an experiment (hashing seed `key`) shadows."""
    return rate >= 1.0 or unit_hash(f"{key}/shadow", unit_string(unit_id)) < rate


def check_name(name: object, what: str = "Experiment name") -> str:
    """A name of letters, digits, '_', '.', '-' (starting with a letter or digit)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(f"{what} {name!r} is not valid.",
                                hint="Use letters, digits, '_', '.' and '-', e.g. 'fraud-v2-vs-v1'.")
    return name


@dataclass(frozen=True)
class Guardrail:
    """A limit on the treatment; breached when its measure exceeds `threshold`.

    error_rate: share of treatment requests answered with a server error (5xx).
    p99_latency_ms: the treatment's 99th-percentile request latency in milliseconds.
    prediction_psi: population stability index of treatment scores against control's.
    Checked once each arm has `min_samples` observations.
    """

    metric: str
    threshold: float
    min_samples: int = 50

    def __post_init__(self) -> None:
        if self.metric not in GUARDRAIL_METRICS:
            raise InvalidInputError(f"Unknown guardrail {self.metric!r}.",
                                    hint=f"Use one of {list(GUARDRAIL_METRICS)}, e.g. "
                                         "'error_rate < 0.02'.")
        if not (math.isfinite(self.threshold) and self.threshold >= 0) or self.min_samples < 1:
            raise InvalidInputError(f"Guardrail {self.metric} needs a threshold >= 0 and "
                                    f"min_samples >= 1 (got {self.threshold}, {self.min_samples}).",
                                    hint="E.g. 'p99_latency_ms < 50'.")

    @classmethod
    def parse(cls, value: Guardrail | str | dict[str, Any]) -> Guardrail:
        """From 'error_rate < 0.02', a mapping, or a Guardrail."""
        if isinstance(value, Guardrail):
            return value
        hint = ("Write it as 'METRIC < LIMIT', e.g. 'error_rate < 0.02', or a mapping "
                "{'metric': 'error_rate', 'threshold': 0.02} (metrics: "
                f"{', '.join(GUARDRAIL_METRICS)}).")
        if isinstance(value, dict):
            fields = _mapping(cls, value, f"Guardrail {value!r}", hint)
            fields["threshold"] = _number(fields.get("threshold"), f"Guardrail {value!r}", hint)
            if "min_samples" in fields:
                fields["min_samples"] = int(_number(fields["min_samples"], f"Guardrail {value!r}",
                                                    hint))
            return cls(**fields)
        match = _GUARDRAIL.match(value) if isinstance(value, str) else None
        if match is None:
            raise InvalidInputError(f"Guardrail {value!r} is not understood.", hint=hint)
        return cls(match.group(1), _number(match.group(3), f"Guardrail {value!r}", hint))


@dataclass(frozen=True)
class Metric:
    """An outcome metric: a column of the outcomes, summed per unit over the experiment.

    kind: 'mean' (any number), 'proportion' (a unit converts when its sum is > 0) or 'ratio'
    (sum of `name` over sum of `denominator`); `covariate` is a pre-period column for CUPED.
    Built-in per-prediction metrics 'log_loss' and 'brier' use the label of each prediction.
    """

    name: str
    kind: str = "mean"
    denominator: str | None = None
    covariate: str | None = None
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise InvalidInputError(f"Metric {self.name!r} has unknown kind {self.kind!r}.",
                                    hint=f"Use one of {list(METRIC_KINDS)}.")
        if (self.kind == "ratio") != (self.denominator is not None):
            raise InvalidInputError(f"Metric {self.name!r}: a ratio needs a denominator, and only "
                                    "a ratio has one.",
                                    hint="E.g. Metric('revenue', kind='ratio', denominator='orders').")

    @classmethod
    def parse(cls, value: Metric | str | dict[str, Any]) -> Metric:
        """From a column name, a mapping, or a Metric (built-ins are lower-is-better)."""
        if isinstance(value, Metric):
            return value
        if isinstance(value, str):
            return cls(value, higher_is_better=BUILTIN_METRICS.get(value, True))
        if isinstance(value, dict):
            return cls(**_mapping(cls, value, f"Metric {value!r}",
                                  "E.g. {'name': 'revenue', 'kind': 'mean', 'covariate': "
                                  "'pre_revenue', 'higher_is_better': True}."))
        raise InvalidInputError(f"Metric {value!r} is not understood.",
                                hint="Pass a column name of the outcomes, or a mapping like "
                                     "{'name': 'loss', 'higher_is_better': False}.")

    @property
    def is_builtin(self) -> bool:
        return self.name in BUILTIN_METRICS


@dataclass(frozen=True)
class RampStep:
    """From `after_seconds` since the start, the treatment gets `weight` of the traffic."""

    weight: float
    after_seconds: float


@dataclass(frozen=True)
class Experiment:
    """One experiment as stored: its definition, status and times."""

    name: str
    model: str
    variants: dict[str, str]  # variant name -> model reference; the first is the control
    weights: dict[str, float]
    unit: str
    mode: str = "ab"
    metrics: tuple[Metric, ...] = ()
    guardrails: tuple[Guardrail, ...] = ()
    ramp: tuple[RampStep, ...] = ()
    seed: str = ""
    coverage: float = 1.0
    label: str = "label"
    shadow_sample: float = 1.0  # shadow mode: the share of units whose rows the treatment runs on
    status: str = "draft"
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    updated_at: datetime | None = None
    decision: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def control(self) -> str:
        return next(iter(self.variants))

    @property
    def names(self) -> list[str]:
        return list(self.variants)

    @property
    def key(self) -> str:
        """The hashing seed (GrowthBook's experiment key): the seed, or the name."""
        return self.seed or self.name

    def weights_at(self, now: datetime) -> list[float]:
        """The split at `now`: the ramp's step for a canary; everything on control after a
        rollback."""
        elapsed = (now - self.started_at).total_seconds() if self.started_at else 0.0
        return self.weights_after(elapsed)

    def weights_after(self, elapsed: float) -> list[float]:
        """The split `elapsed` seconds after the start (see `weights_at`)."""
        names = self.names
        if self.status == "rolled_back":
            return [1.0] + [0.0] * (len(names) - 1)
        if self.mode == "canary" and self.ramp:
            share = self.ramp[0].weight
            for step in self.ramp:
                if elapsed >= step.after_seconds:
                    share = step.weight
            return [1.0 - share, share]
        return [self.weights[n] for n in names]

    def variant_of(self, unit_id: str | int, now: datetime) -> str | None:
        """The variant of a unit at `now` (None: outside coverage or a unit GrowthBook skips)."""
        index = assign(self.key, unit_id, self.weights_at(now), coverage=self.coverage)
        return None if index is None else self.names[index]

    def shadowed(self, unit_id: str | int) -> bool:
        """Whether a unit is in the shadow sample: its GrowthBook v2 hash under the salt
        '<key>/shadow' is below `shadow_sample`, so a unit is always or never shadowed, and the
        sample is independent of the variant buckets (and of other experiments)."""
        return in_shadow_sample(self.key, unit_id, self.shadow_sample)

    def spec(self) -> dict[str, Any]:
        """The definition as JSON-ready data (what the store keeps)."""
        return {"variants": self.variants, "weights": self.weights, "unit": self.unit,
                "metrics": [asdict(m) for m in self.metrics],
                "guardrails": [asdict(g) for g in self.guardrails],
                "ramp": [asdict(r) for r in self.ramp], "seed": self.seed,
                "coverage": self.coverage, "label": self.label,
                "shadow_sample": self.shadow_sample}

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        times = {k: (getattr(self, k).isoformat() if getattr(self, k) else None)
                 for k in ("created_at", "started_at", "stopped_at", "updated_at")}
        return {"name": self.name, "model": self.model, "mode": self.mode, "status": self.status,
                **self.spec(), **times, "decision": self.decision}


def build(name: str, *, model: str, variants: dict[str, str], weights: dict[str, float] | None,
          unit: str, mode: str, metrics: list[Any], guardrails: list[Any],
          ramp: list[Any] | None, ramp_every: float | None, seed: str | None,
          coverage: float, label: str, shadow_sample: float = 1.0) -> Experiment:
    """A checked new experiment (status draft) from `create`'s arguments."""
    from shipyard.models import parse_ref

    check_name(name)
    check_name(model, "Model name")
    check_name(unit, "Unit")
    if mode not in MODES:
        raise InvalidInputError(f"Mode {mode!r} is not one of {list(MODES)}.",
                                hint="Use 'ab' (split traffic), 'canary' (ramp the treatment up) "
                                     "or 'shadow' (treatment runs off the response path).")
    if not isinstance(variants, dict) or len(variants) < 2:
        raise InvalidInputError(f"An experiment needs at least two variants, got {variants!r}.",
                                hint='E.g. variants={"control": "fraud@champion", '
                                     '"treatment": "fraud/4"} (the first is the control).')
    for variant, ref in variants.items():
        check_name(variant, "Variant name")
        parsed = parse_ref(ref)
        if parsed.name != model:
            raise InvalidInputError(f"Variant {variant!r} serves {ref!r}, not a version of model "
                                    f"{model!r}.", hint=f"Use references like '{model}@champion' "
                                                        f"or '{model}/3'.")
    if mode in ("canary", "shadow") and len(variants) != 2:
        raise InvalidInputError(f"A {mode} experiment has exactly two variants (control and "
                                f"treatment), not {len(variants)}.", hint="Use mode='ab' for more.")
    given = weights or {v: 1 / len(variants) for v in variants}
    if set(given) != set(variants):
        raise InvalidInputError(f"Weights name {sorted(given)}, the variants are {sorted(variants)}.",
                                hint="Give one weight per variant.")
    ordered = {v: _number(given[v], f"Weight of {v!r}", "Weights are numbers, e.g. "
                          "{'control': 0.9, 'treatment': 0.1}.") for v in variants}
    assign(name, "probe", list(ordered.values()), coverage=coverage)  # checks weights, coverage
    steps = _ramp(ramp, ramp_every) if mode == "canary" else ()
    if ramp and mode != "canary":
        raise InvalidInputError("A ramp schedule is for mode='canary' only.",
                                hint="Drop `ramp`, or use mode='canary'.")
    sample = _shadow_sample(shadow_sample, mode)
    parsed_metrics = tuple(Metric.parse(m) for m in metrics)
    if len({m.name for m in parsed_metrics}) != len(parsed_metrics):
        raise InvalidInputError("A metric is listed twice.", hint="List each metric once.")
    return Experiment(name=name, model=model, variants=dict(variants), weights=ordered, unit=unit,
                      mode=mode, metrics=parsed_metrics,
                      guardrails=tuple(Guardrail.parse(g) for g in guardrails), ramp=steps,
                      seed=seed or "", coverage=coverage, label=label, shadow_sample=sample)


def _shadow_sample(value: Any, mode: str) -> float:
    """The checked shadow sample rate: a number in (0, 1], other than 1 only in shadow mode."""
    hint = "Give the share of units to shadow, e.g. shadow_sample=0.1 (default 1: every unit)."
    if isinstance(value, bool):
        raise InvalidInputError(f"shadow_sample: {value!r} is not a number.", hint=hint)
    rate = _number(value, "shadow_sample", hint)
    if not (math.isfinite(rate) and 0 < rate <= 1):
        raise InvalidInputError(f"shadow_sample {value!r} is not in (0, 1].", hint=hint)
    if rate != 1 and mode != "shadow":
        raise InvalidInputError(f"shadow_sample is for mode='shadow' only (mode is {mode!r}).",
                                hint="Drop shadow_sample, or use mode='shadow'.")
    return rate


def _ramp(ramp: list[Any] | None, every: float | None) -> tuple[RampStep, ...]:
    """Ramp steps from weights (with `every` seconds between them) or (weight, after) pairs."""
    if not ramp:
        raise InvalidInputError("A canary needs a ramp schedule.",
                                hint="E.g. ramp=[0.01, 0.05, 0.25, 0.5], ramp_every=600 "
                                     "(seconds per step).")
    hint = ("Treatment shares in [0, 1] at increasing times, the first at 0 s, e.g. "
            "[(0.01, 0), (0.05, 600), (0.25, 1200)].")
    steps = []
    for i, step in enumerate(ramp):
        if isinstance(step, list | tuple) and len(step) == 2:
            weight, after = step
        elif isinstance(step, dict):
            fields = _mapping(RampStep, step, f"Ramp step {step!r}", hint)
            weight, after = fields["weight"], fields["after_seconds"]
        elif isinstance(step, list | tuple):
            raise InvalidInputError(f"Ramp step {step!r} is not a (weight, after_seconds) pair.",
                                    hint=hint)
        else:
            if every is None or _number(every, "ramp_every", hint) <= 0:
                raise InvalidInputError("Ramp weights without times need ramp_every (seconds).",
                                        hint="E.g. ramp=[0.01, 0.05, 0.25], ramp_every=600.")
            weight, after = step, i * _number(every, "ramp_every", hint)
        steps.append(RampStep(_number(weight, f"Ramp step {step!r}", hint),
                              _number(after, f"Ramp step {step!r}", hint)))
    if any(not 0 <= s.weight <= 1 for s in steps) or \
            any(b.after_seconds <= a.after_seconds for a, b in zip(steps, steps[1:], strict=False)) \
            or steps[0].after_seconds != 0:
        raise InvalidInputError(f"Ramp {ramp!r} is not a schedule.", hint=hint)
    return tuple(steps)


def from_row(row: Any) -> Experiment:
    """An Experiment from a row of the experiments table (spec and decision as JSON)."""
    import json

    from shipyard.core.time import to_utc

    spec = json.loads(row.spec)
    return Experiment(
        name=row.name, model=row.model, variants=spec["variants"], weights=spec["weights"],
        unit=spec["unit"], mode=row.mode, metrics=tuple(Metric(**m) for m in spec["metrics"]),
        guardrails=tuple(Guardrail(**g) for g in spec["guardrails"]),
        ramp=tuple(RampStep(**r) for r in spec["ramp"]), seed=spec["seed"],
        coverage=spec["coverage"], label=spec.get("label", "label"),
        shadow_sample=spec.get("shadow_sample", 1.0), status=row.status,
        created_at=to_utc(row.created_at),
        started_at=to_utc(row.started_at) if row.started_at else None,
        stopped_at=to_utc(row.stopped_at) if row.stopped_at else None,
        updated_at=to_utc(row.updated_at),
        decision=json.loads(row.decision) if row.decision else None)
