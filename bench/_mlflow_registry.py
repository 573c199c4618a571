"""MLflow's side of bench/registry.py; runs in bench/.venv-mlflow, prints one JSON line.

    bench/.venv-mlflow/bin/python bench/_mlflow_registry.py --dir DIR --model MODEL.pkl

Sets up a SQLite tracking store in DIR, then times, with MLflow's default settings:
``mlflow.sklearn.log_model`` (packaging; it infers pip requirements), ``mlflow.register_model``,
``MlflowClient.get_model_version_by_alias`` and a warm ``mlflow.pyfunc.load_model`` by alias.
The cold load (a fresh process importing MLflow) is timed by the parent. The only setting
not left at its default is the list of types skops may trust (see below). The alias
``champion`` is left on the last version registered.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import pickle
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

MODEL_NAME = "bench"


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{args.dir / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        "bench", artifact_location=(args.dir / "mlartifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    model = pickle.loads(args.model.read_bytes())
    # MLflow 3 names the model `name=`; MLflow 2 called it `artifact_path=`. MLflow 3.17
    # saves with skops by default, which refuses HistGradientBoosting's tree type unless it
    # is listed as trusted: the one setting we pass besides the defaults.
    options: dict[str, Any] = {"name": "model"}
    parameters = inspect.signature(mlflow.sklearn.log_model).parameters
    if "name" not in parameters:
        options = {"artifact_path": "model"}
    if "skops_trusted_types" in parameters:
        options["skops_trusted_types"] = [type(p).__module__ + "." + type(p).__qualname__
                                          for p in model._predictors[0]]

    log_times, register_times = [], []
    version: Any = None
    for i in range(args.repeat + 1):  # the first round warms imports up and is not counted
        with mlflow.start_run():
            started = time.perf_counter()
            info = mlflow.sklearn.log_model(model, **options)
            logged = time.perf_counter()
            version = mlflow.register_model(info.model_uri, MODEL_NAME)
            done = time.perf_counter()
        if i:
            log_times.append(logged - started)
            register_times.append(done - logged)

    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, "champion", version.version)
    client.get_model_version_by_alias(MODEL_NAME, "champion")
    lookups = []
    for _ in range(args.lookups):
        started = time.perf_counter()
        client.get_model_version_by_alias(MODEL_NAME, "champion")
        lookups.append(time.perf_counter() - started)

    uri = f"models:/{MODEL_NAME}@champion"
    mlflow.pyfunc.load_model(uri)
    loads = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        mlflow.pyfunc.load_model(uri)
        loads.append(time.perf_counter() - started)

    print(json.dumps({
        "version": mlflow.__version__,
        "log_model_ms": median_ms(log_times),
        "register_model_ms": median_ms(register_times),
        "register_total_ms": median_ms([a + b for a, b in zip(log_times, register_times,
                                                                   strict=True)]),
        "alias_resolution_ms": median_ms(lookups),
        "load_warm_ms": median_ms(loads),
        "runs_ms": {"log_model": [round(t * 1000, 1) for t in log_times],
                    "register_model": [round(t * 1000, 1) for t in register_times],
                    "load_warm": [round(t * 1000, 1) for t in loads]},
    }))


if __name__ == "__main__":
    main()
