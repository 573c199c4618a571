"""`project.training`: training datasets, and fit = dataset -> train -> evaluate -> track -> register."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.artifacts import ArtifactStore
from shipyard.metadata.db import Database
from shipyard.training.datasets import DatasetStore, TrainingDataset
from shipyard.training.estimators import class_path, params_of
from shipyard.training.fit import FitResult, train
from shipyard.training.split import SplitSpec, as_split_spec

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.features.store import FeatureStore
    from shipyard.models import ModelRegistry, ServiceInputs
    from shipyard.tracking import Tracking


class Training:
    """Training datasets (point-in-time, with lineage) and `fit` for one project."""

    def __init__(self, db: Database, project: str, artifacts: ArtifactStore, *,
                 features: Callable[[], FeatureStore], tracking: Callable[[], Tracking],
                 models: Callable[[], ModelRegistry],
                 service_inputs: Callable[[str], ServiceInputs]) -> None:
        self.datasets = DatasetStore(db, project, artifacts, features=features,
                                     service_inputs=service_inputs)
        self._tracking = tracking
        self._models = models

    def dataset(self, entity_df: pd.DataFrame | str | Path, *, feature_service: str,
                label: str | None = None, name: str | None = None,
                timestamp: str | None = None) -> TrainingDataset:
        """Join `feature_service` point-in-time to `entity_df`; store it with its lineage.

        `entity_df` is a DataFrame or a Parquet path with the join keys, a timestamp column
        (`event_timestamp`, or `timestamp=`) and the `label` column.
        """
        return self.datasets.create_dataset(entity_df, feature_service=feature_service,
                                            label=label, name=name, timestamp=timestamp)

    def get_dataset(self, dataset_id: str) -> TrainingDataset:
        """A stored dataset by id; `to_pandas()` / `read_bytes()` give its exact snapshot."""
        return self.datasets.get_dataset(dataset_id)

    def list_datasets(self, *, name: str | None = None,
                      feature_service: str | None = None) -> list[TrainingDataset]:
        """Stored datasets, newest first."""
        return self.datasets.list_datasets(name=name, feature_service=feature_service)

    def fit(self, estimator: Any, *, feature_service: str, labels: pd.DataFrame | str | Path,
            label: str, split: SplitSpec | Sequence[Any] | None = None, threshold: float = 0.5,
            name: str | None = None, experiment: str | None = None, register: bool = True,
            onnx: bool = False, alias: str | None = None, description: str = "",
            tags: Mapping[str, object] | None = None) -> FitResult:
        """Build the dataset, train on its earliest rows, evaluate on the later ones, track it
        in a run and register the model (as `name`, default the feature service's name).

        The inputs are the service's columns in signature order; `split` is a SplitSpec,
        fractions such as (0.7, 0.15, 0.15) (the default) or one or two cutoff times. Metrics
        are logged as `validation_<metric>` and `test_<metric>`; `alias` is pointed at the
        new version. Nulls reach estimators that take NaN as they are; others get a median
        imputer, and text columns an ordinal encoder, inside the registered Pipeline (see
        `shipyard.training.estimators`). The caller's estimator is cloned, never changed.
        """
        from shipyard.models.refs import check_alias, check_model_name

        name = check_model_name(name or feature_service)
        if alias is not None:
            check_alias(alias)
        spec = as_split_spec(split)
        dataset = self.dataset(labels, feature_service=feature_service, label=label, name=name,
                               timestamp=spec.timestamp)
        lineage = {"dataset_id": dataset.id, "feature_service": feature_service,
                   "definitions_version": dataset.definitions_version}
        params = {"estimator": class_path(estimator), **params_of(estimator), **lineage,
                  "label": label, "threshold": threshold, **spec.to_params()}
        tracking, version = self._tracking(), None
        with tracking.start_run(experiment=experiment or name, params=params,
                                tags={f"shipyard.{k}": v for k, v in lineage.items()}) as run:
            trained = train(estimator, dataset.to_pandas(), features=dataset.feature_columns,
                            label=label, split=spec, threshold=threshold)
            run.log_params(trained.params())
            run.log_metrics(trained.metrics)
            if register:
                models = self._models()
                version = models.register(name, trained.model, run=run, dataset=dataset,
                                          feature_service=feature_service, onnx=onnx,
                                          description=description, tags=tags)
                if alias is not None:
                    version = models.set_alias(name, alias, version.version)
                run.set_tags({"shipyard.model_version": version.ref})
        return FitResult(trained.model, trained.task, trained.metrics, run.id, dataset, version,
                         trained.features, trained.sizes, trained.cutoffs)
