"""The model server: deployments, their metrics and the prediction log, on the feature server.

`create_model_app(project)` is `create_app` with the prediction routes (`/v1/models/...`) and
the Open Inference Protocol (`/v2/...`); both share one `ModelServer` per app, kept in the
server state, which loads the deployments in the background at startup (until then /readyz
says not ready), drains them and flushes the prediction log at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from shipyard.core.errors import ConfigError, ShipyardError
from shipyard.core.types import FeatureType
from shipyard.experiments.guardrails import Breach
from shipyard.experiments.spec import Experiment
from shipyard.features.online_read import ReadPlan
from shipyard.predictions import PredictionWriter
from shipyard.project import Project
from shipyard.serving.deployments import Deployment, Deployments
from shipyard.serving.features import _PlanCache
from shipyard.serving.inference import BatchRunner, LoadedModel, pin_threads
from shipyard.serving.model_metrics import ModelMetrics
from shipyard.serving.state import ServerState
from shipyard.settings import DeploymentConfig

logger = logging.getLogger("shipyard.serving")
MODELS_ENV = "SHIPYARD_SERVE_MODELS"  # JSON list of model references (`shipyard serve --model`)
_STATE_KEY = "model_server"
_STATS_SECONDS = 1.0


class ModelServer:
    """What the prediction routes of one app share."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.metrics = ModelMetrics(state.metrics.registry)
        self.writer: PredictionWriter | None = None
        self.deployments = Deployments(state.settings.deployments, state.project.models,
                                       runner=self._runner, on_batch=self._on_batch,
                                       on_change=self._on_change,
                                       experiments=self._running_experiment)
        self._background: set[asyncio.Task[Any]] = set()
        self._plans = _PlanCache()
        self._stats: asyncio.Task[None] | None = None
        self._batch_metrics: dict[str, tuple[Deployment, Any, Any]] = {}
        state.on_startup(self.start)
        state.on_shutdown(self.stop)
        state.add_readiness_check("models", self.check_models)

    def plan_inputs(self, loaded: LoadedModel
                    ) -> tuple[dict[str, type | None] | None, tuple[tuple[str, FeatureType], ...]]:
        """Join-key types and request fields of the model's feature service (None: none)."""
        if loaded.feature_service is None:
            return None, ()
        plan: ReadPlan = self.state.reader.plan(None, loaded.feature_service, False)
        inputs = self._plans.get(plan)
        return inputs.key_kinds, inputs.request_fields

    async def start(self) -> None:
        """Open the log, start the batchers and load every deployment (in the background)."""
        pin_threads()
        if any(d.config.log_predictions for d in self.deployments):
            self.writer = await asyncio.to_thread(self.state.project.predictions.open_writer)
            self._stats = asyncio.create_task(self._watch_log(), name="prediction-log-stats")
        await self.deployments.start()

    async def stop(self) -> None:
        """Finish in-flight batches, then write and fsync the prediction log."""
        await self.deployments.stop()
        if self._stats is not None:
            self._stats.cancel()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
            self.metrics.observe_log(self.writer.stats())

    async def check_models(self) -> None:
        """Readiness: every deployment has loaded a version."""
        waiting = [d for d in self.deployments if not d.is_ready]
        if waiting:
            raise ShipyardError("Not loaded yet: " + ", ".join(
                d.name + (f" ({d.error})" if d.error else "") for d in waiting))

    def _runner(self, deployment: Deployment) -> BatchRunner:
        writer = self.writer if deployment.config.log_predictions else None
        m = self.metrics
        fetch, call = m.feature_fetch.labels(deployment.name), m.model_call.labels(deployment.name)

        def observe(rows: int, feature_seconds: float, model_seconds: float) -> None:
            fetch.observe(feature_seconds)
            call.observe(model_seconds)

        return BatchRunner(lambda: deployment.current, self.state.reader, self.state.store,
                           writer=writer, observe=observe)

    def _running_experiment(self, model: str) -> Experiment | None:
        return self.state.project.experiments.running_for(model)

    def on_rollback(self, experiment: Experiment, breaches: list[Breach]) -> None:
        """A guardrail broke: roll the experiment back in the store (in the background)."""
        reason = "; ".join(b.reason for b in breaches)
        evidence = {"breaches": [{"guardrail": b.guardrail.metric,
                                  "threshold": b.guardrail.threshold, "variant": b.variant,
                                  "value": b.value, "samples": b.samples} for b in breaches]}
        task = asyncio.create_task(asyncio.to_thread(
            self.state.project.experiments.rollback, experiment.name, reason, evidence))
        self._background.add(task)
        task.add_done_callback(self._rolled_back)

    def _rolled_back(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Could not record the rollback: %s", task.exception())

    def _on_batch(self, name: str, size: int) -> None:
        children = self._batch_metrics.get(name)
        if children is None:  # label lookups cost more than the observation: once per name
            children = self._batch_metrics[name] = (
                self.deployments.get(name), self.metrics.batch_size.labels(name),
                self.metrics.queue_depth.labels(name))
        deployment, batch_size, queue_depth = children
        batch_size.observe(size)
        queue_depth.set(deployment.batcher.queue_depth if deployment.batcher else 0)

    def _on_change(self, deployment: Deployment) -> None:
        if deployment.current is not None:
            self.metrics.loaded_version.labels(deployment.name).set(deployment.current.version)
            if deployment.swapped_at is not None:
                self.metrics.swaps.labels(deployment.name).inc()

    async def _watch_log(self) -> None:
        while self.writer is not None:
            self.metrics.observe_log(self.writer.stats())
            for d in self.deployments:
                if d.batcher is not None:
                    self.metrics.queue_depth.labels(d.name).set(d.batcher.queue_depth)
            await asyncio.sleep(_STATS_SECONDS)


def model_server(state: ServerState) -> ModelServer:
    """The app's ModelServer (made by the first route factory that asks)."""
    server = state.extras.get(_STATE_KEY)
    if server is None:
        server = state.extras[_STATE_KEY] = ModelServer(state)
    return server


def with_models(project: Project, models: Sequence[str]) -> Project:
    """The project serving `models` (references) too, with shipyard.yaml's settings for them."""
    if not models:
        return project
    configured = {d.model: d for d in project.settings.deployments}
    deployments = [configured.get(ref) or DeploymentConfig(model=ref) for ref in models]
    settings = project.settings.model_copy(update={"deployments": deployments})
    return Project(project.root, settings)


def create_model_app(project: Project, *, models: Sequence[str] = (), **options: Any) -> Any:
    """The server of a project with its models: `create_app` plus prediction and v2 routes.

    Args:
        project: The loaded project; `deployments:` in its settings are served.
        models: Model references to serve instead (e.g. 'fraud@champion').
        options: More `create_app` options (max_body_bytes, metrics_dir).
    """
    from shipyard.serving.app import create_app
    from shipyard.serving.predict_routes import predict_routes
    from shipyard.serving.v2_routes import v2_routes

    project = with_models(project, models)
    if not project.settings.deployments:
        raise ConfigError("No model to serve.",
                          hint="Pass --model NAME@ALIAS, or list `deployments:` in "
                               "shipyard.yaml (e.g. `- model: fraud@champion`).")
    return create_app(project, routes=[predict_routes, v2_routes], **options)


def model_app(project: Project, **options: Any) -> Any:
    """The app of one `shipyard serve` worker (models from SHIPYARD_SERVE_MODELS)."""
    models = json.loads(os.environ.get(MODELS_ENV) or "[]")
    return create_model_app(project, models=models, **options)
