"""MLflow's side of bench/serving.py; runs in bench/.venv-mlflow.

Saves the benchmark's fitted scikit-learn model (a pickle written by bench/serving.py with
the same scikit-learn version) as an MLflow model folder, then replaces itself with
`mlflow models serve` on it (local environment, default workers).

    bench/.venv-mlflow/bin/python bench/_mlflow_serve.py --model MODEL.pkl --dir DIR --port P
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import pickle
import shutil
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow.sklearn

    target = args.dir / "mlflow-model"
    shutil.rmtree(target, ignore_errors=True)
    with args.model.open("rb") as file:
        model = pickle.load(file)  # noqa: S301 - the benchmark's own pickle
    # MLflow 3.17 saves with skops, which refuses HistGradientBoosting's tree type unless it
    # is listed as trusted: the one setting we pass besides the defaults
    options = {}
    if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
        options["skops_trusted_types"] = sorted({
            type(p).__module__ + "." + type(p).__qualname__
            for predictors in model._predictors for p in predictors})
    mlflow.sklearn.save_model(model, str(target), **options)
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")  # mlflow runs uvicorn
    mlflow = str(Path(bin_dir) / "mlflow")
    os.execv(mlflow, [mlflow, "models", "serve", "-m", str(target), "-h", "127.0.0.1",
                      "-p", str(args.port), "--env-manager", "local"])


if __name__ == "__main__":
    main()
