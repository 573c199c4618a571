"""Benchmark: the model registry, Shipyard against MLflow on the same model, in one run.

Measured, each as the median of several runs (milliseconds):

* register   -- package and register a version. Shipyard: ``project.models.register``
                (pickle, manifest with signature and checksums, content-addressed artifacts,
                metadata row). MLflow: ``mlflow.sklearn.log_model`` with default settings
                plus ``mlflow.register_model``.
* alias      -- resolve ``bench@champion``. Shipyard: ``project.models.resolve`` (the hot
                path) and ``get_version`` (the full record); MLflow:
                ``MlflowClient.get_model_version_by_alias``.
* warm load  -- load by alias in a process that has loaded it before.
* cold load  -- a fresh process: import the library and load the model by alias. Shipyard
                natively (unpickling imports scikit-learn and SciPy) and through its ONNX
                copy (onnxruntime, no scikit-learn); MLflow with ``mlflow.pyfunc.load_model``.
                The floor -- a process that only unpickles the model -- is measured too.
* cold load + predict -- the same fresh processes, then one ``predict`` on a one-row
                DataFrame (which imports pandas where the load did not).

Both use SQLite metadata and local artifacts in a temporary folder. MLflow runs in
``bench/.venv-mlflow`` (created by this script, with the same scikit-learn version, so that
both load the very same pickled model). Cold loads alternate between the two, so a busy
moment of the machine weighs on both.

    .venv/bin/python bench/registry.py [--repeat 7] [--no-mlflow] [--baseline-src DIR]

``--baseline-src`` also cold-loads with another Shipyard source tree first on PYTHONPATH
(e.g. a checkout before a change) to compare. One JSON document goes to stdout; progress
messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLFLOW_SPECS = ["mlflow==3.17.2", f"scikit-learn=={metadata.version('scikit-learn')}"]
MLFLOW_CHECK = "import mlflow, sklearn; assert sklearn.__version__ == {!r}".format(
    metadata.version("scikit-learn"))
TARGETS = {"register_ms": 100.0, "alias_resolution_ms": 1.0, "cold_load_ms": 1000.0,
           "speedup": 3.0}

COLD_SHIPYARD = ("import shipyard; shipyard.Project.load({root!r}).models.load("
                 "'bench@champion', runtime={runtime!r})")
COLD_MLFLOW = "import mlflow; mlflow.pyfunc.load_model('models:/bench@champion')"
FRAME = "pd.DataFrame([[0.5] * {n}], columns=[f'f{{i}}' for i in range({n})])"
COLD_SHIPYARD_PREDICT = ("import shipyard, pandas as pd; shipyard.Project.load({root!r}).models.load("
                         "'bench@champion', runtime={runtime!r}).predict(" + FRAME + ")")
COLD_MLFLOW_PREDICT = ("import mlflow, pandas as pd; mlflow.pyfunc.load_model("
                       "'models:/bench@champion').predict(" + FRAME + ")")
COLD_UNPICKLE = "import pickle; pickle.loads(open({path!r}, 'rb').read())"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median_ms(samples: Sequence[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def timed(func: Callable[[], object], repeat: int) -> list[float]:
    """Seconds per call of `func`, `repeat` times."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return samples


def train_model(rows: int = 10_000, features: int = 20) -> tuple[Any, pd.DataFrame]:
    """The benchmark model: gradient boosting on a seeded synthetic classification task."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, features)),
                     columns=[f"f{i}" for i in range(features)])
    y = (X["f0"] + 0.5 * X["f1"] - 0.25 * X["f2"] + rng.normal(size=rows) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0)
    return model.fit(X, y), X


def ensure_mlflow_venv(venv: Path = MLFLOW_VENV) -> Path:
    """Create `venv` with MLflow (and our scikit-learn version) unless it already works."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", MLFLOW_CHECK],
                                          capture_output=True).returncode == 0:
        return python
    if not python.exists():
        log(f"creating the MLflow virtualenv {venv} ...")
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    log(f"pip install {' '.join(MLFLOW_SPECS)} into {venv} (takes a few minutes) ...")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", *MLFLOW_SPECS], check=True, stdout=sys.stderr)
    subprocess.run([str(python), "-c", MLFLOW_CHECK], check=True)
    return python


def bench_shipyard(root: Path, model: Any, example: pd.DataFrame, repeat: int,
                   lookups: int) -> dict[str, Any]:
    """Register, resolve and warm-load in this process."""
    import shipyard as sy

    (root / "shipyard.yaml").write_text("project: bench\n")
    project = sy.Project.load(root)
    register = project.models.register
    register("bench", model, signature=example.head())  # warm-up: imports, migrations
    registers = timed(lambda: register("bench", model, signature=example.head()), repeat)
    register("bench", model, signature=example.head(), onnx=True)  # warm-up: skl2onnx imports
    with_onnx = timed(lambda: register("bench", model, signature=example.head(), onnx=True),
                      repeat)
    latest = project.models.get_version("bench")
    project.models.set_alias("bench", "champion", latest.version)
    resolves = timed(lambda: project.models.resolve("bench@champion"), lookups)
    records = timed(lambda: project.models.get_version("bench@champion"), lookups)
    project.models.load("bench@champion")
    project.models.load("bench@champion", runtime="onnx")
    loads = timed(lambda: project.models.load("bench@champion"), repeat)
    onnx_loads = timed(lambda: project.models.load("bench@champion", runtime="onnx"), repeat)
    project.close()
    return {"version": sy.__version__, "register_ms": median_ms(registers),
            "register_with_onnx_ms": median_ms(with_onnx),
            "alias_resolution_ms": median_ms(resolves), "alias_get_version_ms": median_ms(records),
            "load_warm_ms": median_ms(loads), "load_warm_onnx_ms": median_ms(onnx_loads),
            "runs_ms": {"register": [round(t * 1000, 1) for t in registers],
                        "load_warm": [round(t * 1000, 1) for t in loads]}}


def cold_runs(commands: dict[str, tuple[list[str], dict[str, str]]],
              repeat: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU (user + system) seconds of fresh processes, in rounds (each command
    once per round). CPU time suffers less than wall time when other jobs share the cores."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (command, env) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(command, check=True, env={**os.environ, **env},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall[name].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def targets_met(report: dict[str, Any]) -> dict[str, bool]:
    """Each target against this run's medians (speed-ups against MLflow in the same run)."""
    ours, speedup, cold = report["shipyard"], report["speedup"], report["cold_ms"]
    limit, factor = TARGETS["cold_load_ms"], TARGETS["speedup"]
    return {
        "register_under_100ms": ours["register_ms"] < TARGETS["register_ms"],
        "alias_under_1ms": ours["alias_resolution_ms"] < TARGETS["alias_resolution_ms"],
        "cold_load_native_under_1s": cold["shipyard_native"] < limit,
        "cold_load_onnx_under_1s": cold["shipyard_onnx"] < limit,
        "cold_predict_onnx_under_1s": cold["shipyard_onnx_predict"] < limit,
        **{f"{name}_3x": speedup[name] >= factor
           for name in ("register", "alias_resolution", "cold_load_native", "cold_load_onnx",
                        "cold_predict_native", "cold_predict_onnx")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement")
    parser.add_argument("--lookups", type=int, default=500, help="alias resolutions timed")
    parser.add_argument("--no-mlflow", action="store_true", help="Shipyard only")
    parser.add_argument("--baseline-src", type=Path, help="another Shipyard src/ to cold-load")
    args = parser.parse_args()

    mlflow_python = None if args.no_mlflow else ensure_mlflow_venv()
    model, X = train_model()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-registry-") as tmp:
        work = Path(tmp)
        (work / "shipyard").mkdir()
        (work / "mlflow").mkdir()
        model_file = work / "model.pkl"
        model_file.write_bytes(pickle.dumps(model, protocol=5))
        log("Shipyard: register, alias, warm load ...")
        ours = bench_shipyard(work / "shipyard", model, X, args.repeat, args.lookups)
        theirs: dict[str, Any] = {}
        mlflow_env = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow' / 'mlflow.db'}"}
        if mlflow_python is not None:
            log("MLflow: log_model + register_model, alias, warm load (log_model takes ~4 s) ...")
            done = subprocess.run([str(mlflow_python), str(BENCH_DIR / "_mlflow_registry.py"),
                                   "--dir", str(work / "mlflow"), "--model", str(model_file),
                                   "--repeat", str(args.repeat), "--lookups",
                                   str(args.lookups)], capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"MLflow's side failed:\n{done.stderr[-3000:]}")
            theirs = json.loads(done.stdout.strip().splitlines()[-1])

        root = str(work / "shipyard")
        python = sys.executable
        commands = {
            "interpreter": ([python, "-c", "pass"], {}),
            "import_shipyard": ([python, "-c", "import shipyard"], {}),
            "unpickle_floor": ([python, "-c", COLD_UNPICKLE.format(path=str(model_file))], {}),
            "shipyard_native": ([python, "-c", COLD_SHIPYARD.format(root=root,
                                                                    runtime="native")], {}),
            "shipyard_onnx": ([python, "-c", COLD_SHIPYARD.format(root=root, runtime="onnx")],
                              {}),
        }
        for runtime in ("native", "onnx"):
            commands[f"shipyard_{runtime}_predict"] = ([python, "-c", COLD_SHIPYARD_PREDICT.format(
                root=root, runtime=runtime, n=X.shape[1])], {})
        if args.baseline_src is not None:
            baseline = {"PYTHONPATH": str(args.baseline_src.resolve())}
            commands["baseline_import_shipyard"] = ([python, "-c", "import shipyard"], baseline)
            for runtime in ("native", "onnx"):
                commands[f"baseline_{runtime}"] = (
                    [python, "-c", COLD_SHIPYARD.format(root=root, runtime=runtime)], baseline)
        if mlflow_python is not None:
            commands["mlflow"] = ([str(mlflow_python), "-c", COLD_MLFLOW], mlflow_env)
            commands["mlflow_predict"] = ([str(mlflow_python), "-c",
                                           COLD_MLFLOW_PREDICT.format(n=X.shape[1])], mlflow_env)
        log(f"cold loads: {len(commands)} commands x {args.repeat} rounds ...")
        load_before = os.getloadavg()[0]
        cold, cold_cpu = cold_runs(commands, args.repeat)

    cold_ms = {name: median_ms(runs) for name, runs in cold.items()}
    report: dict[str, Any] = {
        "benchmark": "registry", "repeat": args.repeat, "lookups": args.lookups,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "model": {"class": "sklearn HistGradientBoostingClassifier(max_iter=100)",
                  "features": X.shape[1], "training_rows": len(X),
                  "pickle_bytes": len(pickle.dumps(model, protocol=5))},
        "shipyard": {**ours, "cold_load_ms": cold_ms["shipyard_native"],
                     "cold_load_onnx_ms": cold_ms["shipyard_onnx"]},
        "cold_ms": cold_ms,
        "cold_min_ms": {n: round(min(runs) * 1000, 1) for n, runs in cold.items()},
        "cold_cpu_ms": {n: median_ms(runs) for n, runs in cold_cpu.items()},
        "cold_runs_ms": {n: [round(t * 1000) for t in runs] for n, runs in cold.items()},
        "targets": TARGETS,
    }
    if theirs:
        theirs["cold_load_ms"] = cold_ms["mlflow"]
        report["mlflow"] = theirs
        report["speedup"] = {
            "register": round(theirs["register_total_ms"] / ours["register_ms"], 1),
            "register_vs_register_model_only": round(
                theirs["register_model_ms"] / ours["register_ms"], 1),
            "alias_resolution": round(theirs["alias_resolution_ms"]
                                      / ours["alias_resolution_ms"], 1),
            "alias_full_record": round(theirs["alias_resolution_ms"]
                                       / ours["alias_get_version_ms"], 1),
            "load_warm": round(theirs["load_warm_ms"] / ours["load_warm_ms"], 1),
            "cold_load_native": round(cold_ms["mlflow"] / cold_ms["shipyard_native"], 1),
            "cold_load_onnx": round(cold_ms["mlflow"] / cold_ms["shipyard_onnx"], 1),
            "cold_load_native_cpu": round(report["cold_cpu_ms"]["mlflow"]
                                          / report["cold_cpu_ms"]["shipyard_native"], 1),
            "cold_load_onnx_cpu": round(report["cold_cpu_ms"]["mlflow"]
                                        / report["cold_cpu_ms"]["shipyard_onnx"], 1),
            "cold_predict_native": round(cold_ms["mlflow_predict"]
                                         / cold_ms["shipyard_native_predict"], 1),
            "cold_predict_onnx": round(cold_ms["mlflow_predict"]
                                       / cold_ms["shipyard_onnx_predict"], 1),
        }
        report["targets_met"] = targets_met(report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
