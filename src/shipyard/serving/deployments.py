"""Deployments: model references kept loaded, and swapped atomically when an alias moves.

A deployment follows `name@alias` (or pins `name/3`): it is loaded before the server reports
ready, then a task re-resolves the reference every `poll_seconds` (one indexed query); when
the alias has moved, the new version is loaded and warmed up in a thread and replaces the
old one in a single assignment. Requests never wait for a load: a batch runs on whichever
version was current when it started.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import ConfigError, NotFoundError, ShipyardError
from shipyard.models import ModelRef, ModelRegistry, parse_ref
from shipyard.serving.batching import Batcher
from shipyard.serving.inference import ItemResult, LoadedModel, PredictItem, pin_threads, warm_up

if TYPE_CHECKING:
    from shipyard.experiments.spec import Experiment
    from shipyard.serving.experiment_routing import Route
    from shipyard.settings import DeploymentConfig

logger = logging.getLogger("shipyard.serving")
RunnerFactory = Callable[["Deployment"], Callable[[Sequence[PredictItem]], Any]]
ExperimentSource = Callable[[str], "Experiment | None"]  # model name -> its running experiment
# Shadow requests wait up to _SHADOW_WAIT for a batch of up to _SHADOW_BATCH (one model call
# instead of one per request: less CPU taken from the answers); past _SHADOW_QUEUE waiting
# they are dropped and counted, so shadows never hold answers back.
_SHADOW_QUEUE, _SHADOW_BATCH, _SHADOW_WAIT = 256, 16, 0.05


class ModelNotReadyError(ShipyardError):
    """The deployment has not loaded a version yet; retry after `retry_after_seconds`."""

    http_status = 503
    retry_after_seconds = 2


class PredictionTimeoutError(ShipyardError):
    """A prediction took longer than its deployment's timeout."""

    http_status = 504


class Deployment:
    """One served model reference: its loaded version, batcher and alias watcher."""

    def __init__(self, config: DeploymentConfig, registry: ModelRegistry) -> None:
        self.config = config
        self.ref: ModelRef = parse_ref(config.model)
        self.name = config.name or self.ref.name
        self.registry = registry
        self.current: LoadedModel | None = None
        self.error: str | None = None  # why the last load failed, until one succeeds
        self.swapped_at: float | None = None
        self.batcher: Batcher[PredictItem, ItemResult] | None = None
        self.route: Route | None = None  # the running experiment on this model, if any
        self.shadow_batcher: Batcher[PredictItem, ItemResult] | None = None
        self.rolled_back: set[str] = set()  # experiments this process rolled back (terminal)
        self._lock = asyncio.Lock()

    @property
    def is_ready(self) -> bool:
        return self.current is not None

    @property
    def follows_alias(self) -> bool:
        """Whether the reference can move (an alias, or 'latest')."""
        return self.ref.version is None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (the management API's view)."""
        current, c = self.current, self.config
        return {"name": self.name, "ref": str(self.ref),
                "model": current.name if current else self.ref.name,
                "version": current.version if current else None, "ready": current is not None,
                "error": self.error, "max_batch_size": c.max_batch_size,
                "max_wait_ms": c.max_wait_ms, "max_queue": c.max_queue,
                "timeout_ms": c.timeout_ms, "log_predictions": c.log_predictions,
                "runtime": c.runtime,
                "queue_depth": self.batcher.queue_depth if self.batcher else 0,
                "experiment": self.route.describe() if self.route else None}

    async def refresh(self) -> bool:
        """Serve the version the reference points at now; True when it changed."""
        async with self._lock:
            target = await asyncio.to_thread(self.registry.resolve, self.ref)
            current = self.current
            if current is not None and current.version == target.version:
                return False
            loaded = await asyncio.to_thread(self._load, target)
            self.current = loaded  # the swap: the next batch runs on the new version
            self.error = None
            if current is not None:
                self.swapped_at = time.time()
            logger.info("Deployment %r serves %s%s", self.name, loaded.ref,
                        "" if current is None else f" (was version {current.version})")
            return True

    def _load(self, ref: ModelRef) -> LoadedModel:
        model = self.registry.load(ref, runtime=self.config.runtime)
        pin_threads()  # the model may have loaded a library with its own thread pool
        loaded = LoadedModel.of(model)
        warm_up(loaded)
        return loaded

    async def watch(self, on_change: Callable[[Deployment], object]) -> None:
        """Until cancelled: load, then follow the alias every poll_seconds (retrying failures)."""
        while True:
            try:
                if await self.refresh():
                    on_change(self)
            except ShipyardError as exc:
                if exc.message != self.error:
                    logger.warning("Deployment %r: %s", self.name, exc)
                self.error = exc.message
            except Exception as exc:  # keep serving the loaded version; say why once
                if str(exc) != self.error:
                    logger.exception("Deployment %r could not load %s", self.name, self.ref)
                self.error = str(exc)
            if self.current is not None and not self.follows_alias:
                return  # a pinned version never changes
            await asyncio.sleep(self.config.poll_seconds)

    async def refresh_experiment(self, source: ExperimentSource) -> None:
        """Follow the model's running experiment: load its variants' versions, or drop it."""
        from shipyard.serving.experiment_routing import Route

        experiment = await asyncio.to_thread(source, self.ref.name)
        if experiment is None or experiment.name in self.rolled_back:
            self.route = None  # (a rollback may not have reached the store yet)
            return
        refs = {v: await asyncio.to_thread(self.registry.resolve, ref)
                for v, ref in experiment.variants.items()}
        route = self.route
        if route is not None and route.matches(experiment, refs):
            route.experiment = experiment
            return
        known = {m.version: m for m in (route.models.values() if route else ())}
        if self.current is not None:
            known[self.current.version] = self.current
        models = {}
        for variant, ref in refs.items():
            assert ref.version is not None  # resolved
            models[variant] = known.get(ref.version) or await asyncio.to_thread(self._load, ref)
            known[ref.version] = models[variant]
        keep = route.monitor if route is not None and route.experiment.name == experiment.name \
            else None
        self.route = Route(experiment, models, monitor=keep)
        logger.info("Deployment %r routes experiment %r (%s): %s", self.name, experiment.name,
                    experiment.mode, ", ".join(f"{v}={m.ref}" for v, m in models.items()))

    async def watch_experiments(self, source: ExperimentSource) -> None:
        """Until cancelled: re-read the model's running experiment every poll_seconds."""
        error = None
        while True:
            try:
                await self.refresh_experiment(source)
                error = None
            except Exception as exc:  # keep the current routing; say why once
                if str(exc) != error:
                    logger.warning("Deployment %r: cannot follow experiments: %s", self.name, exc)
                error = str(exc)
            await asyncio.sleep(self.config.poll_seconds)

    def loaded(self) -> LoadedModel:
        """The version served now; ModelNotReadyError (503) before the first load."""
        current = self.current
        if current is None or self.batcher is None:
            raise ModelNotReadyError(f"Model {self.name!r} is not loaded yet"
                                     + (f": {self.error}" if self.error else "."),
                                     hint="Retry after the Retry-After delay; /readyz tells "
                                          "when every model is loaded.")
        return current

    async def predict(self, item: PredictItem) -> ItemResult:
        """Predict one request's rows within the deployment's timeout."""
        self.loaded()
        assert self.batcher is not None  # loaded() checked it
        timeout = self.config.timeout_ms / 1000
        try:
            async with asyncio.timeout(timeout):
                return await self.batcher.submit(item)
        except TimeoutError:
            raise PredictionTimeoutError(
                f"Model {self.name!r} did not answer within {timeout:g} s.",
                hint="Retry later; if it persists, raise the deployment's timeout_ms or send "
                     "fewer rows per request.") from None


class Deployments:
    """The deployments of one server, by name."""

    def __init__(self, configs: Sequence[DeploymentConfig], registry: ModelRegistry, *,
                 runner: RunnerFactory, on_batch: Callable[[str, int], object],
                 on_change: Callable[[Deployment], object],
                 experiments: ExperimentSource | None = None) -> None:
        self._by_name: dict[str, Deployment] = {}
        for config in configs:
            deployment = Deployment(config, registry)
            if deployment.name in self._by_name:
                raise ConfigError(f"Two deployments are named {deployment.name!r}.",
                                  hint="Give one a `name:` of its own in shipyard.yaml.")
            self._by_name[deployment.name] = deployment
        self._runner = runner
        self._on_batch = on_batch
        self._on_change = on_change
        self._experiments = experiments
        self._tasks: list[asyncio.Task[None]] = []

    def __iter__(self) -> Any:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Deployment:
        """The deployment called `name`; NotFoundError (404) otherwise."""
        deployment = self._by_name.get(name)
        if deployment is None:
            raise NotFoundError(f"No model {name!r} is served here.",
                                hint=f"Served models: {sorted(self._by_name)}. Deploy it with "
                                     "`shipyard serve --model NAME@ALIAS` or `deployments:` in "
                                     "shipyard.yaml.")
        return deployment

    def is_ready(self) -> bool:
        """Whether every deployment has a loaded version."""
        return all(d.is_ready for d in self)

    async def start(self) -> None:
        """Start batchers, and load and watch every deployment in the background."""
        for d in self:
            c = d.config
            d.batcher = Batcher(self._runner(d), name=d.name, max_batch_size=c.max_batch_size,
                                max_wait_seconds=c.max_wait_ms / 1000, max_queue=c.max_queue,
                                on_batch=functools.partial(self._on_batch, d.name))
            d.batcher.start()
            self._tasks.append(asyncio.create_task(d.watch(self._on_change),
                                                   name=f"watch-{d.name}"))
            if self._experiments is not None:
                d.shadow_batcher = Batcher(self._runner(d), name=f"{d.name}-shadow",
                                           max_batch_size=_SHADOW_BATCH,
                                           max_wait_seconds=_SHADOW_WAIT,
                                           max_queue=_SHADOW_QUEUE, linger=True)
                d.shadow_batcher.start()
                self._tasks.append(asyncio.create_task(d.watch_experiments(self._experiments),
                                                       name=f"experiments-{d.name}"))

    async def stop(self) -> None:
        """Stop watching, and finish the batches in flight."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(d.batcher.stop() for d in self if d.batcher is not None))
        await asyncio.gather(*(d.shadow_batcher.stop() for d in self
                               if d.shadow_batcher is not None))
