"""`shipyard train CONFIG.yaml`: build the dataset, train, evaluate, track and register."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shipyard.cli._common import ProjectOption, console, err_console, open_project
from shipyard.training.config import fit_from_config, read_train_config
from shipyard.training.fit import HOLDOUTS
from shipyard.training.split import SplitSpec

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.training import FitResult


def train(
    config: Annotated[Path, typer.Argument(help="The training YAML (model, estimator, "
                                                "feature_service, labels, label, split, alias).")],
    project: ProjectOption = Path("."),
) -> None:
    """Train a model from a YAML file: dataset, time split, metrics, run, registered version."""
    spec = read_train_config(config)
    with open_project(project) as proj, err_console.status(
            f"Training {spec.model} on {spec.feature_service} ..."):
        result = fit_from_config(proj.training, spec)
    console.print(metrics_table(result.metrics, title=f"{spec.model}: holdout metrics"))
    sizes = ", ".join(f"{k} {v:,}" for k, v in result.sizes.items())
    console.print(f"dataset {result.dataset.id[:12]} ({sizes} rows) · run {result.run_id[:8]}",
                  highlight=False)
    if result.version is not None:
        aliases = f" (aliases: {', '.join(result.version.aliases)})" if result.version.aliases \
            else ""
        console.print(f"registered [bold]{result.version.ref}[/bold]{aliases}")


def metrics_table(metrics: Mapping[str, float], *, title: str) -> Table:
    """A metric-by-split table of `validation_*` / `test_*` metrics."""
    splits = [s for s in HOLDOUTS if any(k.startswith(f"{s}_") for k in metrics)]
    names = dict.fromkeys(k.split("_", 1)[1] for k in metrics if k.split("_", 1)[0] in splits)
    table = Table("metric", *splits, title=title)
    for name in names:
        values = [metrics.get(f"{s}_{name}") for s in splits]
        table.add_row(name, *("-" if v is None or math.isnan(v) else f"{v:.4f}" for v in values))
    return table


# -- demo stages (shipyard demo) ---------------------------------------------------------

_DEMO_MODELS = {"v1": "fraud_v1", "v2": "fraud_v2"}


def _demo_fit(project: Project, state: dict[str, Any], key: str) -> str:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    service = _DEMO_MODELS[key]
    estimator = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    # one thread: the data is small, and OpenMP threads that compete with other busy
    # processes for few cores can take ten times longer than one thread
    with threadpool_limits(1):
        result = project.training.fit(
            estimator, feature_service=service, labels=state["paths"]["labels"],
            label="is_fraud", name="fraud", experiment="fraud-demo",
            split=SplitSpec(label_timestamp="label_timestamp"),
            description=f"HistGradientBoosting on {service}")
    state.setdefault("fits", {})[key] = result
    return (f"{result.ref} on {service} ({len(result.features)} inputs, "
            f"{result.sizes['train']:,} training rows): validation AUC "
            f"{result.metrics['validation_auc']:.3f}")


def stage_fit_v1(project: Project, state: dict[str, Any]) -> str:
    """Demo stage: train and register the fraud model on fraud_v1."""
    return _demo_fit(project, state, "v1")


def stage_fit_v2(project: Project, state: dict[str, Any]) -> str:
    """Demo stage: train and register the fraud model on fraud_v2 (more features)."""
    return _demo_fit(project, state, "v2")


def stage_champion(project: Project, state: dict[str, Any]) -> str:
    """Demo stage: point `fraud@champion` at the version with the better validation AUC."""
    fits: dict[str, FitResult] = state["fits"]
    best = max(fits.values(), key=lambda r: r.metrics["validation_auc"])
    assert best.version is not None  # the demo registers every fit
    project.models.set_alias("fraud", "champion", best.version.version)
    table = Table("version", "service", "inputs", "val AUC", "val log loss", "val prec.",
                  "val recall", "test AUC", "alias", title="Fraud models, time-ordered holdout",
                  caption="validation: the 15 % of rows after the training rows; test: the last 15 %")
    for result in fits.values():
        m = result.metrics
        table.add_row(result.ref, result.dataset.feature_service, str(len(result.features)),
                      *(f"{m[k]:.3f}" for k in ("validation_auc", "validation_log_loss",
                                                "validation_precision", "validation_recall",
                                                "test_auc")),
                      "champion" if result is best else "")
    console.print(table)
    return f"fraud@champion -> {best.ref}"
