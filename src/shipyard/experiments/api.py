"""`project.experiments`: create and run A/B tests, canaries and shadow tests; analyze; decide."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from shipyard.core.errors import ConflictError
from shipyard.experiments import spec as _spec
from shipyard.experiments.analysis import Analysis, analyze
from shipyard.experiments.decision import PROMOTE, ROLLBACK, Decision, decide
from shipyard.experiments.outcomes import OutcomeLog
from shipyard.experiments.spec import Experiment
from shipyard.experiments.stats import DEFAULT_TUNING_N
from shipyard.experiments.store import ExperimentStore

if TYPE_CHECKING:
    from shipyard.metadata.db import Database
    from shipyard.models import ModelRegistry
    from shipyard.predictions import PredictionLog


class Experiments:
    """The experiments of one project: definitions, status, analysis and decisions."""

    def __init__(self, db: Database, project: str, *, models: Callable[[], ModelRegistry],
                 predictions: Callable[[], PredictionLog], outcomes_root: Path) -> None:
        self.store = ExperimentStore(db, project)
        self._models = models
        self._predictions = predictions
        self.outcomes = OutcomeLog(outcomes_root)

    # -- definitions and status -------------------------------------------------------------

    def create(self, name: str, *, model: str, variants: dict[str, str], unit: str,
               weights: dict[str, float] | None = None, mode: str = "ab",
               metrics: Sequence[Any] = (), guardrails: Sequence[Any] = (),
               ramp: Sequence[Any] | None = None, ramp_every: float | None = None,
               seed: str | None = None, coverage: float = 1.0, label: str = "label",
               shadow_sample: float = 1.0, start: bool = False) -> Experiment:
        """Define an experiment (status draft; `start=True` starts it too).

        Args:
            name: Unique name; also the hashing seed unless `seed` is given.
            model: The served model whose requests are split.
            variants: Variant name -> model reference; the first is the control,
                e.g. {"control": "fraud@champion", "treatment": "fraud/4"}.
            unit: The entity key requests are assigned by (e.g. "customer_id").
            weights: Share of traffic per variant (default equal).
            mode: "ab" (split), "canary" (treatment share follows `ramp`) or "shadow"
                (control answers; treatment runs on the same input, off the response path).
            metrics: Outcome columns or Metric specs; the first is the primary metric.
            guardrails: e.g. "error_rate < 0.02", "p99_latency_ms < 50", "prediction_psi < 0.2".
            ramp: Canary treatment shares, e.g. [0.01, 0.05, 0.25, 0.5] with `ramp_every`
                seconds per step, or (share, after_seconds) pairs.
            shadow_sample: In shadow mode, the share of units (0 < x <= 1) whose rows also run
                through the treatment; chosen from the unit id by the experiment's hash, so a
                unit is always or never shadowed.
        """
        experiment = _spec.build(name, model=model, variants=dict(variants), weights=weights,
                                 unit=unit, mode=mode, metrics=list(metrics),
                                 guardrails=list(guardrails),
                                 ramp=list(ramp) if ramp is not None else None,
                                 ramp_every=ramp_every, seed=seed, coverage=coverage, label=label,
                                 shadow_sample=shadow_sample)
        registry = self._models()
        for ref in experiment.variants.values():
            registry.resolve(ref)  # NotFoundError naming the missing version or alias
        running = self.store.running_for(model) if start else None
        if running is not None:  # checked before storing: a failed start leaves no draft
            raise ConflictError(f"Experiment {running.name!r} is already running on model "
                                f"{model!r}; a server routes one at a time.",
                                hint=f"Stop or conclude {running.name!r} first, or create "
                                     "without start.")
        created = self.store.insert(experiment)
        return self.start(name) if start else created

    def start(self, name: str) -> Experiment:
        """Start (or resume) routing traffic; the servers pick it up within a poll."""
        experiment = self.store.get(name)
        registry = self._models()
        versions = {v: registry.resolve(ref).version for v, ref in experiment.variants.items()}
        return self.store.change(name, "start", {"versions": versions})

    def pause(self, name: str) -> Experiment:
        """Stop routing (everything goes to the served version) until `start` again."""
        return self.store.change(name, "pause")

    def stop(self, name: str) -> Experiment:
        """End the experiment without a decision."""
        return self.store.change(name, "stop")

    def rollback(self, name: str, reason: str, evidence: dict[str, Any] | None = None
                 ) -> Experiment:
        """Send all traffic back to control (guardrail breaches call this)."""
        return self.store.change(name, "rollback", {"reason": reason, "evidence": evidence or {}})

    def get(self, name: str) -> Experiment:
        """One experiment."""
        return self.store.get(name)

    def list(self, *, model: str | None = None, status: str | None = None) -> list[Experiment]:
        """Experiments, newest first."""
        return self.store.list(model=model, status=status)

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every change of an experiment, oldest first."""
        return self.store.history(name)

    def running_for(self, model: str) -> Experiment | None:
        """The experiment routing `model`'s requests now, if any."""
        return self.store.running_for(model)

    # -- outcomes, analysis, decision -------------------------------------------------------

    def log_outcomes(self, name: str, frame: pd.DataFrame) -> int:
        """Record outcomes (per unit or per request_id: labels, conversions, revenue...)."""
        experiment = self.store.get(name)
        return self.outcomes.append(name, frame, unit=experiment.unit)

    def predictions(self, name: str) -> pd.DataFrame:
        """The logged predictions of the experiment's model since it started, with the label
        log's newest `label` of each row (NaN where none was logged)."""
        experiment = self.store.get(name)
        log = self._predictions()
        return log.read_labeled(experiment.model, experiment.started_at or experiment.created_at)

    def analyze(self, name: str, outcomes: pd.DataFrame | None = None, *, alpha: float = 0.05,
                bayesian: bool = False, tuning_n: float = DEFAULT_TUNING_N) -> Analysis:
        """Per variant: counts, means, variances; per metric: lift, CI, p-values (see analysis).

        Outcomes are `outcomes` if given, else those logged with `log_outcomes`. Labels for
        quality (AUC, log loss) come from the label log (`project.monitoring.log_labels`),
        overridden by a label column in the outcomes.
        """
        experiment = self.store.get(name)
        frame = outcomes if outcomes is not None else self.outcomes.read(name)
        return analyze(experiment, self.predictions(name), frame, alpha=alpha,
                       bayesian=bayesian, tuning_n=tuning_n)

    def conclude(self, name: str, *, apply: bool = False, outcomes: pd.DataFrame | None = None,
                 alpha: float = 0.05, min_units: int = 100) -> Decision:
        """Recommend promote / rollback / keep running; `apply=True` acts on it.

        Applying a promotion points the control's alias (e.g. fraud@champion) at the
        treatment's version in one atomic registry write, so servers following the alias
        hot-swap; applying either decision ends the experiment and records the decision with
        its evidence (the analysis) in the experiment's history.
        """
        experiment = self.store.get(name)
        analysis = self.analyze(name, outcomes, alpha=alpha)
        decision = decide(experiment, analysis, min_units=min_units,
                          rollback_reason=self._rollback_reason(name))
        if not apply or decision.action not in (PROMOTE, ROLLBACK):
            return decision
        registry = self._models()
        control = registry.resolve(experiment.variants[experiment.control])
        alias_ref = _spec_ref(experiment.variants[experiment.control])
        if decision.action == PROMOTE:
            assert decision.variant is not None
            if alias_ref.alias is None:
                raise ConflictError(f"The control {alias_ref} is a pinned version, so there is no "
                                    "alias to move.",
                                    hint="Use an alias for the control (e.g. fraud@champion), or "
                                         "move an alias yourself with `shipyard models alias`.")
            target = registry.resolve(experiment.variants[decision.variant])
            registry.set_alias(experiment.model, alias_ref.alias, target.version or 0)
            decision.changes.append(f"{experiment.model}@{alias_ref.alias}: version "
                                    f"{control.version} -> {target.version}")
        else:
            decision.changes.append(f"{alias_ref} stays on version {control.version}")
        decision.applied = True
        record = decision.to_dict() | {"evidence": analysis.to_dict()}
        self.store.change(name, "conclude", {"decision": decision.to_dict()}, decision=record)
        return decision

    def _rollback_reason(self, name: str) -> str | None:
        events = [e for e in self.store.history(name) if e["event"] == "rollback"]
        return events[-1]["detail"].get("reason") if events else None


def _spec_ref(ref: str) -> Any:
    from shipyard.models import parse_ref

    return parse_ref(ref)
