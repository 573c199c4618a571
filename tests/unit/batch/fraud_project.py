"""A small fraud project for the batch tests: data, definitions, a registered champion model."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

import shipyard as sy
from shipyard.examples.fraud import features as fraud_features
from shipyard.examples.fraud.generate import generate

END = datetime(2026, 11, 1, tzinfo=UTC)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NOT_FEATURES = {"customer_id", "merchant_id", "event_timestamp", "is_fraud", "label_timestamp",
                "category"}


_TEMPLATE: list[Path] = []  # the project built once per test process, copied by each module


def make_fraud_project(root: Path, *, extra_config: str = "") -> sy.Project:
    """A fraud project in `root`: demo data, applied definitions, `fraud@champion` (a copy of
    one built once per test process: building takes seconds, copying milliseconds)."""
    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="shipyard-fraud-")) / "fraud"
        atexit.register(shutil.rmtree, template.parent, True)
        build_fraud_project(template).close()
        _TEMPLATE.append(template)
    shutil.copytree(_TEMPLATE[0], root)
    if extra_config:
        with open(root / "shipyard.yaml", "a") as fh:
            fh.write(extra_config)
    return sy.Project.load(root)


def build_fraud_project(root: Path, *, customers: int = 100, days: int = 10) -> sy.Project:
    """Generate the demo data in `root`, apply, train and register `fraud@champion`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(fraud_features.__file__, root / "features.py")
    (root / "shipyard.yaml").write_text("project: fraud\n")
    generate(root / "data", customers=customers, days=days, merchants=40, end=END)
    project = sy.Project.load(root)
    project.apply()
    labels = pd.read_parquet(root / "data" / "labels.parquet")
    train = project.features.get_historical_features(labels, feature_service="fraud_v2")
    columns = [c for c in train.columns if c not in NOT_FEATURES]
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    model.fit(train[columns], train["is_fraud"])
    version = project.models.register("fraud", model, feature_service="fraud_v2")
    project.models.set_alias("fraud", "champion", version.version)
    return project


def entities(project: sy.Project, rows: int | None = None, *, seed: int = 0) -> pd.DataFrame:
    """Transactions to score, with a unique `txn` id (the labels, repeated to `rows`)."""
    labels = pd.read_parquet(project.root / "data" / "labels.parquet")
    labels = labels[["customer_id", "merchant_id", "amount", "event_timestamp"]]
    if rows is not None:
        rng = np.random.default_rng(seed)
        labels = labels.iloc[rng.integers(0, len(labels), rows)].reset_index(drop=True)
    return labels.assign(txn=np.arange(len(labels)))


def spark_or_skip() -> Any:
    """The shared test SparkSession; without pyspark or Java: skip (under CI=true: fail)."""
    try:
        from shipyard.batch.spark import spark_session

        session = spark_session("local[2]", {
            "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2",
            # tests run many short jobs: the JVM's quick JIT tier halves start and first job
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"})
        session.sparkContext.setLogLevel("ERROR")
        return session
    except (ImportError, sy.ShipyardError) as exc:
        if IN_CI:
            pytest.fail(f"Spark is not available: {exc} (CI must run every test)")
        pytest.skip(f"Spark is not available: {exc}")
