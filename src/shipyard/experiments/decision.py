"""`conclude`: promote, roll back or keep running, from an analysis, with the reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.experiments.analysis import Analysis, Comparison
from shipyard.experiments.spec import Experiment

PROMOTE, ROLLBACK, KEEP = "promote", "rollback", "keep running"


@dataclass
class Decision:
    """The recommendation, why, and (once applied) what was changed."""

    experiment: str
    action: str  # promote | rollback | keep running
    reasons: list[str]
    variant: str | None = None  # the treatment to promote (or the one rolled back)
    applied: bool = False
    changes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"experiment": self.experiment, "action": self.action, "reasons": self.reasons,
                "variant": self.variant, "applied": self.applied, "changes": self.changes}


def _describe(c: Comparison) -> str:
    effect = f"lift {c.lift:+.2%}" if c.lift is not None else f"difference {c.difference:+.4g}"
    ci = c.lift_ci if c.lift is not None else c.difference_ci
    interval = f" (CI {ci[0]:+.2%} to {ci[1]:+.2%})" if ci and c.lift is not None else ""
    return (f"{c.metric} {c.treatment} vs control: {effect}{interval}, "
            f"sequential p={c.sequential_p_adjusted:.3g} (Holm)")


def decide(experiment: Experiment, analysis: Analysis, *, min_units: int = 100,
           rollback_reason: str | None = None, sequential: bool = True) -> Decision:
    """The recommendation for an analysis.

    In order: a guardrail rollback stands; too few units or a sample-ratio mismatch keeps it
    running (no decision on broken or thin data); a metric significantly worse for a
    treatment rolls it back; the primary (first) metric significantly better, and nothing
    significantly worse, promotes the treatment with the largest primary lift; otherwise it
    keeps running. Significance uses Holm-adjusted always-valid (sequential) p-values by
    default, so that deciding after any number of looks keeps the error rate at alpha.
    """
    name, alpha = experiment.name, analysis.alpha
    if experiment.status == "rolled_back":
        return Decision(name, ROLLBACK, [rollback_reason or "A guardrail was breached."],
                        experiment.names[1])
    thin = [v for v in analysis.variants if v.units < min_units]
    if thin:
        return Decision(name, KEEP, [f"Variant {v.name!r} has {v.units} units; at least "
                                     f"{min_units} per variant are needed." for v in thin])
    if analysis.srm_detected:
        assert analysis.srm is not None
        return Decision(name, KEEP, [
            f"Sample ratio mismatch: units {list(analysis.srm.counts)} against expected "
            f"{[round(e) for e in analysis.srm.expected]} (p={analysis.srm.p_value:.2g}); "
            "assignment looks broken, so no decision is safe. Fix the split and restart."])
    tested = [c for c in analysis.comparisons if c.sequential_p_adjusted is not None]
    if not tested:
        return Decision(name, KEEP, ["No metric could be tested yet: "
                                     + ("; ".join(analysis.notes) or "define metrics.")])
    worse = [c for c in tested if c.significant(alpha, sequential=sequential)
             and c.treatment_is_better is False]
    if worse and len({c.treatment for c in worse}) == len(experiment.names) - 1:
        return Decision(name, ROLLBACK, [_describe(c) + " — significantly worse" for c in worse],
                        worse[0].treatment)
    primary = experiment.metrics[0].name if experiment.metrics else None
    winners = [c for c in tested if c.metric == primary and c.treatment_is_better
               and c.significant(alpha, sequential=sequential)
               and c.treatment not in {w.treatment for w in worse}]
    if winners:
        best = max(winners, key=lambda c: abs(c.lift if c.lift is not None else c.difference or 0))
        return Decision(name, PROMOTE, [_describe(best) + " — significantly better",
                                        "No metric is significantly worse."], best.treatment)
    reasons = [_describe(c) + " — not significant yet" for c in tested if c.metric == primary]
    reasons += [_describe(c) + " — significantly worse" for c in worse]
    return Decision(name, KEEP, reasons or [f"The primary metric {primary!r} has no test yet."])
