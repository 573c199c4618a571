"""Experiments in the model server: each request's rows go to their unit's variant.

A row's unit id is its `entities[<unit>]` (or the `<unit>` field of an instance); `assign`
on the experiment's seed gives the variant, so every server process agrees. Rows without a
unit id, or outside coverage, are served by the deployment's own version and not tagged.
Rows of one request that fall into different variants are predicted per variant and put
back in order. Shadow mode answers from control and sends the same rows (only those of units
in the experiment's shadow sample, a fixed hash-chosen share) to the treatment on
a separate batcher after the answer is ready, only while the model's batcher is idle (a busy
server drops shadows and counts them); its failures only count. Every variant
request feeds the guardrail monitor; the first breach stops routing at once in this process
and rolls the experiment back in the metadata store (the other servers follow within a poll).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import ShipyardError
from shipyard.experiments.assignment import assign
from shipyard.experiments.guardrails import Breach, GuardrailMonitor
from shipyard.experiments.spec import Experiment, in_shadow_sample
from shipyard.serving.inference import ItemResult, LoadedModel

if TYPE_CHECKING:
    from shipyard.models import ModelRef
    from shipyard.serving.deployments import Deployment

logger = logging.getLogger("shipyard.serving")
RollbackHook = Callable[[Experiment, list[Breach]], object]


class Route:
    """A running experiment as one deployment serves it: variants' loaded versions, monitor."""

    def __init__(self, experiment: Experiment, models: dict[str, LoadedModel], *,
                 monitor: GuardrailMonitor | None = None) -> None:
        self.experiment = experiment
        self.models = models
        self.monitor = monitor or GuardrailMonitor(experiment.guardrails, experiment.control)
        self.started = experiment.started_at.timestamp() if experiment.started_at else time.time()
        self.shadow_dropped = 0
        self.shadow_failed = 0
        self.shadows: set[asyncio.Task[None]] = set()

    def matches(self, experiment: Experiment, refs: dict[str, ModelRef]) -> bool:
        """Whether this route serves `experiment` with these versions already."""
        return (experiment.name == self.experiment.name
                and experiment.started_at == self.experiment.started_at
                and {v: r.version for v, r in refs.items()}
                == {v: m.version for v, m in self.models.items()})

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (the deployments listing)."""
        e = self.experiment
        return {"name": e.name, "mode": e.mode, "unit": e.unit,
                "weights": dict(zip(e.names, e.weights_after(time.time() - self.started),
                                    strict=True)),
                "versions": {v: m.version for v, m in self.models.items()},
                "shadow_sample": e.shadow_sample, "shadow_dropped": self.shadow_dropped,
                "shadow_failed": self.shadow_failed}

    def variant_of(self, unit_id: Any) -> str | None:
        """The variant answering a unit (control for every unit in shadow mode)."""
        if unit_id is None or isinstance(unit_id, bool) or not isinstance(unit_id, int | str):
            return None
        e = self.experiment
        weights = tuple(e.weights_after(time.time() - self.started))
        index = _variant_index(e.key, unit_id, weights, e.coverage)
        if index is None:
            return None
        return e.control if e.mode == "shadow" else e.names[index]

    def shadowed(self, unit_id: Any) -> bool:
        """Whether a (control-enrolled) unit's rows also go to the treatment in shadow mode."""
        e = self.experiment
        return e.shadow_sample >= 1.0 or _shadowed(e.key, unit_id, e.shadow_sample)


_shadowed = functools.lru_cache(maxsize=1 << 16)(in_shadow_sample)  # returning units skip hashing


@functools.lru_cache(maxsize=1 << 16)
def _variant_index(key: str, unit_id: int | str, weights: tuple[float, ...], coverage: float
                   ) -> int | None:
    """`assign`, cached: returning units (and the same weights) skip the two hashes."""
    return assign(key, unit_id, weights, coverage=coverage)


def _rows(body: Any) -> tuple[list[Any], str] | None:
    """The rows of a body and its shape ('one', 'list', 'instances'); None if malformed."""
    if isinstance(body, dict) and "instances" in body:
        rows = body["instances"]
        return (rows, "instances") if isinstance(rows, list) and rows else None
    if isinstance(body, dict):
        return [body], "one"
    if isinstance(body, list) and body:
        return body, "list"
    return None


def _unit_id(row: Any, shape: str, unit: str) -> Any:
    if not isinstance(row, dict):
        return None
    if shape == "instances":
        return row.get(unit)
    entities = row.get("entities")
    return entities.get(unit) if isinstance(entities, dict) else None


def _body(rows: list[Any], shape: str) -> Any:
    if shape == "instances":
        return {"instances": rows}
    return rows[0] if shape == "one" else rows


def _scores(result: ItemResult) -> list[float]:
    if result.probabilities is not None:
        return [p[-1] for p in result.probabilities]
    return [float(p) for p in result.predictions if isinstance(p, int | float)]


# (body, variant's model, variant, shadow=False) -> awaitable ItemResult
Predict = Callable[..., Any]


async def routed_predict(deployment: Deployment, route: Route, body: Any, predict: Predict,
                         on_rollback: RollbackHook) -> dict[str, Any]:
    """Predict a request under an experiment: per-variant groups, shadow copy, guardrails."""
    e = route.experiment
    parsed = _rows(body)
    if parsed is None:  # let the usual path produce the usual 422
        result = await predict(body, None, None)
        return _answer(deployment, [(list(range(1)), None, result)], e, 0)
    rows, shape = parsed
    groups: dict[str | None, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(route.variant_of(_unit_id(row, shape, e.unit)), []).append(i)
    calls = [_timed(route, variant, predict(_body([rows[i] for i in idx], shape),
                                            route.models.get(variant) if variant else None,
                                            variant), on_rollback, deployment)
             for variant, idx in groups.items()]
    if len(calls) == 1:  # the usual case: no task to make
        results = [await calls[0]]
    else:
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
    answer = _answer(deployment, [(idx, v, r) for (v, idx), r in zip(groups.items(), results,
                                                                      strict=True)], e, len(rows))
    sampled = [i for i in groups.get(e.control, ()) if e.mode == "shadow"
               and route.shadowed(_unit_id(rows[i], shape, e.unit))]
    if sampled and deployment.route is route:
        if deployment.batcher is not None and deployment.batcher.is_busy:
            route.shadow_dropped += 1  # the model is busy: shadows only use idle capacity
        else:
            enrolled = _body([rows[i] for i in sampled], shape)
            task = asyncio.get_running_loop().create_task(
                _shadow(deployment, route, e.names[1], enrolled, predict, on_rollback))
            route.shadows.add(task)  # a strong reference until it is done
            task.add_done_callback(route.shadows.discard)
    return answer


async def _timed(route: Route, variant: str | None, call: Any, on_rollback: RollbackHook,
                 deployment: Deployment, *, timed: bool = True) -> ItemResult:
    started = time.perf_counter()
    try:
        result: ItemResult = await call
    except ShipyardError as exc:
        if variant is not None:
            _observe(route, variant, exc.http_status >= 500,
                     time.perf_counter() - started if timed else None, [], on_rollback,
                     deployment)
        raise
    if variant is not None:
        _observe(route, variant, False, time.perf_counter() - started if timed else None,
                 _scores(result), on_rollback, deployment)
    return result


def _observe(route: Route, variant: str, error: bool, seconds: float | None, scores: list[float],
             on_rollback: RollbackHook, deployment: Deployment) -> None:
    if not route.monitor.record(variant, error=error, seconds=seconds, scores=scores):
        return
    breaches = route.monitor.check()
    if breaches and deployment.route is route:
        deployment.route = None  # this process stops routing now; the store tells the others
        deployment.rolled_back.add(route.experiment.name)
        logger.warning("Experiment %r rolled back: %s", route.experiment.name,
                       "; ".join(b.reason for b in breaches))
        on_rollback(route.experiment, breaches)


async def _shadow(deployment: Deployment, route: Route, variant: str, body: Any,
                  predict: Predict, on_rollback: RollbackHook) -> None:
    """The treatment on the same rows, off the response path (logged with its variant)."""
    batcher = deployment.shadow_batcher
    if batcher is None or batcher.queue_depth >= batcher.max_queue:
        route.shadow_dropped += 1
        return
    try:
        await _timed(route, variant, predict(body, route.models[variant], variant, shadow=True),
                     on_rollback, deployment, timed=False)  # it waits for a batch on purpose
    except Exception as exc:  # a shadow failure must never reach a client
        route.shadow_failed += 1
        logger.debug("Shadow prediction of %r failed: %s", route.experiment.name, exc)


def _answer(deployment: Deployment, parts: list[tuple[list[int], str | None, ItemResult]],
            experiment: Experiment, n: int) -> dict[str, Any]:
    """One response: predictions in request order, with the variant(s) and version(s)."""
    if len(parts) == 1:
        _, variant, result = parts[0]
        return {"predictions": result.predictions, "probabilities": result.probabilities,
                "model": deployment.ref.name, "version": result.version,
                "experiment": experiment.name if variant else None, "variant": variant}
    predictions: list[Any] = [None] * n
    probabilities: list[Any] | None = [None] * n
    variants: list[str | None] = [None] * n
    versions: list[int] = [0] * n
    for idx, variant, result in parts:
        for k, i in enumerate(idx):
            predictions[i] = result.predictions[k]
            variants[i], versions[i] = variant, result.version
            if probabilities is not None:
                if result.probabilities is None:
                    probabilities = None
                else:
                    probabilities[i] = result.probabilities[k]
    return {"predictions": predictions, "probabilities": probabilities,
            "model": deployment.ref.name, "version": versions[0],
            "experiment": experiment.name, "variant": None, "variants": variants,
            "versions": versions}
