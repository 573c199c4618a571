"""The training YAML of `shipyard train`: what `project.training.fit` takes, as a file.

```yaml
model: fraud                       # the registered model's name
estimator:
  class: sklearn.ensemble.HistGradientBoostingClassifier
  params: {max_iter: 100}
feature_service: fraud_v2
labels: data/labels.parquet        # relative to this file's folder
label: is_fraud
split: {fractions: [0.7, 0.15, 0.15], label_timestamp: label_timestamp}   # or cutoffs: [...]
alias: challenger                  # optional: point this alias at the new version
```
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.core.errors import ConfigError
from shipyard.training.split import DEFAULT_FRACTIONS, SplitSpec

if TYPE_CHECKING:
    from shipyard.training.api import Training
    from shipyard.training.fit import FitResult


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EstimatorConfig(_Section):
    class_path: str = Field(alias="class")
    params: dict[str, Any] = Field(default_factory=dict)


class SplitConfig(_Section):
    fractions: list[float] | None = None
    cutoffs: list[datetime] | None = None
    timestamp: str = "event_timestamp"
    label_timestamp: str | None = None

    def spec(self) -> SplitSpec:
        """The SplitSpec this section describes (default fractions when none are given)."""
        fractions = None if self.cutoffs else tuple(self.fractions or DEFAULT_FRACTIONS)
        return SplitSpec(fractions=fractions,
                         cutoffs=tuple(self.cutoffs) if self.cutoffs else None,
                         timestamp=self.timestamp, label_timestamp=self.label_timestamp)


class TrainConfig(_Section):
    """A training YAML, validated."""

    model: str
    estimator: EstimatorConfig
    feature_service: str
    labels: Path
    label: str
    split: SplitConfig = Field(default_factory=SplitConfig)
    threshold: float = 0.5
    experiment: str | None = None
    alias: str | None = None
    register_model: bool = Field(default=True, alias="register")
    onnx: bool = False
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


def read_train_config(path: str | Path) -> TrainConfig:
    """Parse and validate a training YAML; relative paths become relative to its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Training config {str(path)!r} does not exist.",
                          hint="Pass the path of a YAML file (see `shipyard train --help`).")
    try:
        data = yaml.safe_load(path.read_text())
        config = TrainConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", hint="Fix its syntax.") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where!r} is invalid: {first['msg']}.",
                          hint="Keys: model, estimator {class, params}, feature_service, labels, "
                               "label, split, threshold, experiment, alias, onnx.") from exc
    if not config.labels.is_absolute():
        config = config.model_copy(update={"labels": path.parent / config.labels})
    return config


def fit_from_config(training: Training, config: TrainConfig) -> FitResult:
    """Run `training.fit` as the config says."""
    from shipyard.training.estimators import load_estimator

    estimator = load_estimator(config.estimator.class_path, config.estimator.params)
    return training.fit(estimator, feature_service=config.feature_service,
                        labels=config.labels, label=config.label, split=config.split.spec(),
                        threshold=config.threshold, name=config.model,
                        experiment=config.experiment, register=config.register_model,
                        onnx=config.onnx, alias=config.alias, description=config.description,
                        tags=config.tags)
