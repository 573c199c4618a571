"""`analyze`: an experiment's logged predictions and outcomes, compared arm against arm.

Units are the experiment's unit ids (an entity key logged with each prediction). In split
modes (ab, canary) a unit seen in more than one variant (a canary ramp moved it, or it came
back after a pause) is left out and counted. Outcome metrics are summed per unit over the
experiment; an exposed unit without outcomes counts as 0. The built-in metrics `log_loss` and
`brier` are per labeled prediction, averaged per unit. Each treatment is compared with the
control by Welch's t-test on the relative lift (two-proportion z for conversion metrics),
the always-valid sequential test, and optionally the Bayesian one; Holm adjusts the p-values
across every metric and treatment. A sample-ratio mismatch blocks any decision.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError
from shipyard.experiments import stats
from shipyard.experiments.spec import Experiment, Metric
from shipyard.predictions.labels import column_text

_EPS = 1e-15


@dataclass(frozen=True)
class VariantStats:
    """One variant's traffic, scores, latency and offline quality on labeled traffic."""

    name: str
    versions: list[int]
    units: int
    predictions: int
    mean_score: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    labeled: int = 0
    auc: float | None = None
    log_loss: float | None = None


@dataclass(frozen=True)
class ArmSummary:
    """A metric in one arm: units, mean and per-unit variance."""

    variant: str
    n: int
    mean: float
    variance: float


@dataclass
class Comparison:
    """A treatment against the control on one metric."""

    metric: str
    kind: str
    treatment: str
    higher_is_better: bool
    arms: list[ArmSummary]
    lift: float | None = None  # relative, (T - C) / C
    lift_ci: tuple[float, float] | None = None
    difference: float | None = None  # absolute, T - C
    difference_ci: tuple[float, float] | None = None
    p_value: float | None = None
    p_adjusted: float | None = None  # Holm across every comparison
    sequential_p: float | None = None
    sequential_p_adjusted: float | None = None
    sequential_ci: tuple[float, float] | None = None
    chance_to_win: float | None = None
    note: str = ""

    def significant(self, alpha: float, *, sequential: bool = True) -> bool:
        """Whether the adjusted (sequential, by default) p-value is below alpha."""
        p = self.sequential_p_adjusted if sequential else self.p_adjusted
        return p is not None and p < alpha

    @property
    def treatment_is_better(self) -> bool | None:
        """Whether the point estimate favours the treatment (None without an estimate)."""
        if self.lift is None and self.difference is None:
            return None
        effect = self.lift if self.lift is not None else self.difference
        assert effect is not None
        return effect > 0 if self.higher_is_better else effect < 0


@dataclass
class Analysis:
    """Everything `conclude` decides on, and what the CLI prints."""

    experiment: str
    mode: str
    status: str
    alpha: float
    variants: list[VariantStats]
    comparisons: list[Comparison]
    srm: stats.SrmResult | None
    excluded_units: int
    notes: list[str] = field(default_factory=list)

    @property
    def srm_detected(self) -> bool:
        return self.srm is not None and self.srm.srm_detected

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the decision's evidence)."""
        out = {"experiment": self.experiment, "mode": self.mode, "status": self.status,
               "alpha": self.alpha, "variants": [asdict(v) for v in self.variants],
               "comparisons": [asdict(c) for c in self.comparisons],
               "excluded_units": self.excluded_units, "notes": self.notes, "srm": None}
        if self.srm is not None:
            out["srm"] = {"counts": list(self.srm.counts), "expected": list(self.srm.expected),
                          "p_value": self.srm.p_value, "detected": self.srm.srm_detected}
        return _clean(out)


def _clean(value: Any) -> Any:
    """NaN/inf as None, tuples as lists: strict JSON."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def scores(frame: pd.DataFrame) -> np.ndarray:
    """The positive-class probability of each row (the prediction itself without one)."""
    proba = frame["probabilities"] if "probabilities" in frame else None
    if proba is not None and proba.notna().all() and len(proba):
        return np.array([p[-1] for p in proba], dtype=np.float64)
    return pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(np.float64)


def _auc(labels: np.ndarray, score: np.ndarray) -> float | None:
    if len(np.unique(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, score))


def exposures(experiment: Experiment, predictions: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The experiment's logged rows with a `unit` column; units in several variants dropped."""
    rows = predictions
    if "experiment" in rows:
        rows = rows[(rows["experiment"] == experiment.name) & rows["variant"].notna()]
    else:
        rows = rows.iloc[0:0]
    column = experiment.unit if experiment.unit in rows else f"feature.{experiment.unit}"
    if len(rows) and column not in rows:
        raise InvalidInputError(f"The prediction log has no column {experiment.unit!r}, the "
                                f"experiment's unit.",
                                hint="Send the unit id in each request's entities (or as a "
                                     "feature of `instances`).")
    # as text the way outcomes' unit ids are: a null elsewhere in the log makes ints float
    rows = rows.assign(unit=column_text(rows[column]) if len(rows) else pd.Series(dtype=str))
    excluded = 0
    if experiment.mode != "shadow" and len(rows):
        per_unit = rows.groupby("unit")["variant"].nunique()
        mixed = per_unit[per_unit > 1].index
        excluded = len(mixed)
        rows = rows[~rows["unit"].isin(mixed)]
    return rows.reset_index(drop=True), excluded


def _labels(experiment: Experiment, rows: pd.DataFrame, outcomes: pd.DataFrame | None) -> pd.Series:
    """The label of each logged row (NaN where none), from the outcomes, else the label log.

    Outcomes join on request_id and, when they name it, the unit (one request may carry several
    units' rows); the k-th row of a unit in a request gets the k-th outcome of that pair.
    Without the unit, a request's label labels its every row; differing labels for a request
    of several units are refused (the log does not keep the row order within a request).
    """
    logged = rows["label"].astype(float) if "label" in rows else pd.Series(np.nan, index=rows.index)
    if outcomes is None or experiment.label not in outcomes or "request_id" not in outcomes:
        return logged  # the label log's (read_labeled), or none
    labeled = outcomes.dropna(subset=[experiment.label])
    if experiment.unit in labeled:
        keys = _row_keys(labeled["request_id"], column_text(labeled[experiment.unit]))
        row_keys = _row_keys(rows["request_id"], rows["unit"], by_variant=rows["variant"])
    else:
        keys, row_keys = column_text(labeled["request_id"]), column_text(rows["request_id"])
        shared = _shared_requests(rows, keys)
        varying = labeled[experiment.label].groupby(keys.to_numpy()).nunique()
        _refuse_shared(experiment, sorted(set(shared) & set(varying[varying > 1].index)),
                       f"different {experiment.label!r} values")
    mapping = pd.Series(labeled[experiment.label].astype(float).to_numpy(), index=keys.to_numpy())
    mapping = mapping[~mapping.index.duplicated(keep="last")]
    return row_keys.map(mapping).astype(float).fillna(logged)


def _shared_requests(rows: pd.DataFrame, request_ids: pd.Series) -> list[str]:
    """The ids among `request_ids` of logged requests that carry more than one unit."""
    if not len(rows):
        return []
    units = rows["unit"].groupby(column_text(rows["request_id"]).to_numpy()).nunique()
    return [r for r in set(request_ids) if units.get(r, 0) > 1]


def _refuse_shared(experiment: Experiment, requests: list[str], what: str) -> None:
    """InvalidInputError when outcomes by request id alone cannot tell a request's units apart."""
    if requests:
        raise InvalidInputError(
            f"Outcomes for {len(requests)} requests (e.g. {requests[0]!r}) give {what} by "
            f"request_id alone, but each of those requests carried several units: the outcomes "
            f"need the unit column {experiment.unit!r}.",
            hint=f"Add {experiment.unit!r} to the outcome rows (one request may serve many units).")


def _row_keys(request_ids: pd.Series, units: pd.Series, by_variant: pd.Series | None = None
              ) -> pd.Series:
    """request, unit and occurrence number (per variant: a shadow logs each row twice)."""
    key = request_ids.astype(str) + "\x00" + units
    group = key if by_variant is None else key + "\x00" + by_variant.astype(str)
    return key + "\x00" + group.groupby(group).cumcount().astype(str)


def _variant_stats(experiment: Experiment, rows: pd.DataFrame, labels: pd.Series) -> list[VariantStats]:
    out = []
    for name in experiment.names:
        part = rows[rows["variant"] == name]
        score = scores(part) if len(part) else np.array([])
        latency = part["latency_ms"].dropna().to_numpy(np.float64) if "latency_ms" in part \
            else np.array([])
        lab = labels[part.index].to_numpy()
        keep = ~np.isnan(lab) & ~np.isnan(score) if len(part) else np.array([], bool)
        y, s = lab[keep], score[keep]
        loss = None
        if len(y):
            p = np.clip(s, _EPS, 1 - _EPS)
            loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        out.append(VariantStats(
            name, sorted(int(v) for v in part["version"].unique()), int(part["unit"].nunique()),
            len(part), float(np.nanmean(score)) if len(score) else None,
            float(np.percentile(latency, 50)) if len(latency) else None,
            float(np.percentile(latency, 99)) if len(latency) else None,
            int(len(y)), _auc(y, s) if len(y) else None, loss))
    return out


def unit_values(experiment: Experiment, metric: Metric, rows: pd.DataFrame,
                labels: pd.Series, outcomes: pd.DataFrame | None) -> pd.DataFrame | None:
    """Per unit: its variant and the metric's value (plus `denominator`/`covariate`)."""
    units = rows.drop_duplicates("unit")[["unit", "variant"]]
    if metric.is_builtin:
        if experiment.mode == "shadow":
            units = rows[["unit", "variant"]].drop_duplicates()
        y = labels.to_numpy()
        p = np.clip(scores(rows), _EPS, 1 - _EPS)
        loss = -(y * np.log(p) + (1 - y) * np.log(1 - p)) if metric.name == "log_loss" \
            else (p - y) ** 2
        frame = pd.DataFrame({"unit": rows["unit"], "variant": rows["variant"], "value": loss})
        frame = frame.dropna()
        if frame.empty:
            return None
        return frame.groupby(["unit", "variant"], as_index=False)["value"].mean()
    if outcomes is None or experiment.mode == "shadow":
        return None
    columns = [c for c in (metric.name, metric.denominator, metric.covariate) if c]
    missing = [c for c in columns if c not in outcomes]
    if missing:
        raise InvalidInputError(f"The outcomes have no column {missing[0]!r} (metric "
                                f"{metric.name!r}).", hint=f"Outcome columns: {list(outcomes)}.")
    out = outcomes
    if experiment.unit in out:
        out = out.assign(unit=column_text(out[experiment.unit]))
    elif "request_id" in out:
        requests = column_text(out["request_id"])
        _refuse_shared(experiment, sorted(_shared_requests(rows, requests)),
                       f"metric {metric.name!r}")
        unit_of = rows.assign(request_id=column_text(rows["request_id"])) \
            .drop_duplicates("request_id").set_index("request_id")["unit"]
        out = out.assign(unit=requests.map(unit_of).to_numpy())
    else:
        raise InvalidInputError(f"The outcomes have neither the unit column {experiment.unit!r} "
                                "nor request_id.", hint="Log outcomes per unit or per request.")
    sums = out.dropna(subset=["unit"]).groupby("unit")[columns].sum(min_count=1)
    frame = units.join(sums, on="unit").fillna(0.0)
    frame = frame.rename(columns={metric.name: "value", metric.denominator or "": "denominator",
                                  metric.covariate or "": "covariate"})
    if metric.kind == "proportion":
        frame["value"] = (frame["value"] > 0).astype(float)
        if metric.covariate:
            frame["covariate"] = (frame["covariate"] > 0).astype(float)
    return frame


def _summary(metric: Metric, part: pd.DataFrame) -> stats.Summary:
    values = part["value"].to_numpy(np.float64)
    binary = metric.kind == "proportion"
    if metric.kind == "ratio":
        return stats.RatioSummary.from_values(values, part["denominator"].to_numpy(np.float64))
    if metric.covariate:
        return stats.CupedSummary.from_values(values, part["covariate"].to_numpy(np.float64),
                                              binary=binary)
    if binary:
        return stats.ProportionSummary.from_values(values)
    return stats.MeanSummary.from_values(values)


def compare(metric: Metric, treatment: str, control_summary: stats.Summary,
            treatment_summary: stats.Summary, *, alpha: float, bayesian: bool,
            tuning_n: float) -> Comparison:
    """One treatment against control on one metric (a note instead of numbers when the data
    cannot be tested yet)."""
    arms = [ArmSummary(v, s.n, s.mean, s.variance)
            for v, s in (("control", control_summary), (treatment, treatment_summary))]
    result = Comparison(metric.name, metric.kind if not metric.covariate else "cuped", treatment,
                        metric.higher_is_better, arms)
    try:
        absolute = stats.frequentist_test(control_summary, treatment_summary, relative=False,
                                          alpha=alpha)
        result.difference, result.difference_ci = absolute.effect, absolute.ci
        result.p_value = absolute.p_value
        if isinstance(control_summary, stats.ProportionSummary):
            assert isinstance(treatment_summary, stats.ProportionSummary)
            result.p_value = stats.two_proportion_test(control_summary, treatment_summary,
                                                       alpha=alpha).p_value
        relative = stats.frequentist_test(control_summary, treatment_summary, relative=True,
                                          alpha=alpha)
        result.lift, result.lift_ci = relative.effect, relative.ci
        result.p_value = relative.p_value if not isinstance(
            control_summary, stats.ProportionSummary) else result.p_value
        sequential = stats.sequential_test(control_summary, treatment_summary, relative=True,
                                           alpha=alpha, tuning_n=tuning_n)
        result.sequential_p, result.sequential_ci = sequential.p_value, sequential.ci
        if bayesian:
            posterior = stats.bayesian_test(control_summary, treatment_summary, alpha=alpha,
                                            lower_is_better=not metric.higher_is_better)
            result.chance_to_win = posterior.chance_to_win
    except InvalidInputError as exc:
        result.note = exc.message
    return result


def analyze(experiment: Experiment, predictions: pd.DataFrame, outcomes: pd.DataFrame | None, *,
            alpha: float = 0.05, bayesian: bool = False,
            tuning_n: float = stats.DEFAULT_TUNING_N) -> Analysis:
    """Compare every treatment with the control on every metric (see the module doc)."""
    stats.sequential_rho(alpha, tuning_n)  # checks alpha and tuning_n
    rows, excluded = exposures(experiment, predictions)
    labels = _labels(experiment, rows, outcomes)
    variants = _variant_stats(experiment, rows, labels)
    notes = []
    if excluded:
        notes.append(f"{excluded} units were served by more than one variant and are left out.")
    if rows.empty:
        notes.append("No logged predictions of this experiment yet.")
    comparisons: list[Comparison] = []
    for metric in experiment.metrics:
        values = unit_values(experiment, metric, rows, labels, outcomes) if len(rows) else None
        if values is None:
            notes.append(f"Metric {metric.name!r}: no data (outcomes or labels) yet"
                         + (" — a shadow test compares only built-in metrics on labels."
                            if experiment.mode == "shadow" and not metric.is_builtin else "."))
            continue
        summaries = {v: _summary(metric, values[values["variant"] == v]) for v in experiment.names}
        for treatment in experiment.names[1:]:
            comparisons.append(compare(metric, treatment, summaries[experiment.control],
                                       summaries[treatment], alpha=alpha, bayesian=bayesian,
                                       tuning_n=tuning_n))
    _adjust(comparisons, alpha)
    return Analysis(experiment.name, experiment.mode, experiment.status, alpha, variants,
                    comparisons, _srm(experiment, variants), excluded, notes)


def _adjust(comparisons: list[Comparison], alpha: float) -> None:
    """Holm across every tested comparison, for fixed-horizon and sequential p-values."""
    tested = [c for c in comparisons if c.p_value is not None and c.sequential_p is not None]
    if not tested:
        return
    fixed = stats.holm([c.p_value for c in tested], alpha=alpha)  # type: ignore[misc]
    sequential = stats.holm([c.sequential_p for c in tested], alpha=alpha)  # type: ignore[misc]
    for c, p, q in zip(tested, fixed.adjusted, sequential.adjusted, strict=True):
        c.p_adjusted, c.sequential_p_adjusted = p, q


def _srm(experiment: Experiment, variants: list[VariantStats]) -> stats.SrmResult | None:
    """Units per variant against the weights (split modes with a fixed split only)."""
    if experiment.mode != "ab" or sum(v.units for v in variants) == 0:
        return None
    arms = [(v.units, experiment.weights[v.name]) for v in variants
            if experiment.weights[v.name] > 0]
    if len(arms) < 2:
        return None
    return stats.srm_test([n for n, _ in arms], [w for _, w in arms])
