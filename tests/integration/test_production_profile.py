"""The demo's core path on the production profile — PostgreSQL metadata, Redis online store,
artifacts on an S3 endpoint (moto on loopback), Spark batch scoring — gives the same results
as on the embedded defaults. The same project; only shipyard.yaml changes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.ensemble import HistGradientBoostingClassifier

import shipyard as sy
from shipyard.examples.fraud import features as fraud_features
from shipyard.examples.fraud.generate import generate
from tests.conftest import RedisServer
from tests.unit.batch.fraud_project import END, NOT_FEATURES, spark_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
SCORED = 400  # entity rows scored in batch
LIVE = 6  # transactions sent to the model server


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's data, generated once (small) and shared by both profiles."""
    folder = tmp_path_factory.mktemp("profile-data")
    generate(folder, customers=80, days=8, merchants=30, end=END)
    return folder


def run_core_path(root: Path, data: Path, config: str, engine: str) -> dict[str, Any]:
    """apply, materialize, train + register + alias, serve predict, batch score: the results."""
    from starlette.testclient import TestClient

    from shipyard.serving.model_server import create_model_app

    root.mkdir(parents=True)
    shutil.copy(fraud_features.__file__, root / "features.py")
    shutil.copytree(data, root / "data")
    (root / "shipyard.yaml").write_text(f"project: fraud\n{config}")
    out: dict[str, Any] = {}
    with sy.Project.load(root) as project:
        plan = project.apply()
        out["plan"] = sorted(str(c) for c in plan.changes)
        out["materialized"] = sorted((r.view, r.rows) for r in
                                     project.features.materialize(None, END))
        labels = pd.read_parquet(root / "data" / "labels.parquet")
        train = project.features.get_historical_features(labels, feature_service="fraud_v2")
        columns = [c for c in train.columns if c not in NOT_FEATURES]
        model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(
            train[columns], train["is_fraud"])
        version = project.models.register("fraud", model, feature_service="fraud_v2")
        project.models.set_alias("fraud", "champion", version.version)
        out["version"] = version.version
        live = labels.tail(LIVE)
        rows = [{"entities": {"customer_id": int(r.customer_id),
                              "merchant_id": int(r.merchant_id)},
                 "request": {"amount": float(r.amount)}} for r in live.itertuples()]
        out["online"] = project.features.get_online_features(
            feature_service="fraud_v2",
            entity_rows=[{**r["entities"], **r["request"]} for r in rows])
        app = create_model_app(project, models=["fraud@champion"])
        with TestClient(app) as client:
            deadline = time.monotonic() + 60  # the models load in the background
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, client.get("/readyz").text
                time.sleep(0.05)
            answers = [client.post("/v1/models/fraud/predict", json=row) for row in rows]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        out["served"] = [a.json()["predictions"] for a in answers]
        entities = labels[["customer_id", "merchant_id", "amount", "event_timestamp"]].head(SCORED)
        result = project.batch.predict("fraud@champion", entities, output=root / "scores",
                                       engine=engine, keep_columns=["amount"])
        assert result.engine == engine and result.rows == SCORED
        out["scores"] = pd.read_parquet(root / "scores").sort_values(
            ["customer_id", "event_timestamp", "amount"]).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, data: Path) -> dict[str, Any]:
    return run_core_path(tmp_path_factory.mktemp("embedded") / "fraud", data, "", "local")


@pytest.fixture
def production_config(postgres_url: str, redis_server: RedisServer, s3_artifacts: str,
                      s3_endpoint: str) -> Iterator[str]:
    yield (f"metadata: '{postgres_url}'\n{redis_server.online_config()}"
           f"artifacts: {s3_artifacts}\nartifacts_endpoint_url: {s3_endpoint}\n")


def test_the_production_profile_gives_the_embedded_results(
        embedded: dict[str, Any], data: Path, tmp_path: Path, production_config: str,
        postgres_url: str, redis_server: RedisServer, s3_artifacts: str,
        s3_endpoint: str) -> None:
    import boto3
    import redis

    spark_or_skip()  # the shared test session; the Spark engine reuses it
    production = run_core_path(tmp_path / "fraud", data, production_config, "spark")
    assert production["plan"] == embedded["plan"]
    assert production["materialized"] == embedded["materialized"]
    assert production["version"] == embedded["version"] == 1
    for name, values in embedded["online"].items():
        np.testing.assert_allclose(np.asarray(production["online"][name], dtype=float),
                                   np.asarray(values, dtype=float), rtol=0, atol=1e-12,
                                   equal_nan=True, err_msg=name)
    assert production["served"] == embedded["served"]
    local, on_spark = embedded["scores"], production["scores"]
    same = ["customer_id", "merchant_id", "event_timestamp", "amount", "prediction",
            "model_name", "model_version"]
    pd.testing.assert_frame_equal(on_spark[same], local[same])
    np.testing.assert_allclose(on_spark["proba_1"], local["proba_1"], rtol=0, atol=1e-9)
    # and the state really went to the servers, not to local files
    assert not (tmp_path / "fraud" / ".shipyard" / "metadata.db").exists()
    assert not (tmp_path / "fraud" / ".shipyard" / "online.db").exists()
    bucket, _, prefix = s3_artifacts.removeprefix("s3://").partition("/")
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=bucket,
                                                                          Prefix=prefix)
    assert listed.get("KeyCount", 0) > 0
    client = redis.Redis.from_url(redis_server.url)
    assert next(client.scan_iter(match=f"{redis_server.key_prefix}:*", count=1_000), None)
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
    engine.dispose()
    assert tables, "no metadata tables in the PostgreSQL schema"
