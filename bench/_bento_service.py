"""BentoML's side of bench/serving.py; runs in bench/.venv-bentoml.

The benchmark's fitted scikit-learn model (a pickle, BENCH_MODEL_PKL) behind one BentoML
service, without feature lookup: the client sends the feature row. BENCH_BATCHABLE=1 turns
on BentoML's adaptive batching (up to 32 rows; requests are shed past 1 s).

    cd bench && BENCH_MODEL_PKL=... ../bench/.venv-bentoml/bin/bentoml serve \
        _bento_service:Fraud --host 127.0.0.1 --port P
"""

from __future__ import annotations

import os
import pickle

import bentoml
import numpy as np

BATCHABLE = os.environ.get("BENCH_BATCHABLE", "0") == "1"


@bentoml.service(workers=1)
class Fraud:
    """P(fraud) of feature rows."""

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        with open(os.environ["BENCH_MODEL_PKL"], "rb") as file:
            self.model = pickle.load(file)  # noqa: S301 - the benchmark's own pickle

    @bentoml.api(batchable=BATCHABLE, max_batch_size=32, max_latency_ms=1_000)
    def predict(self, input: np.ndarray) -> np.ndarray:  # noqa: A002 - the API's field name
        return self.model.predict_proba(input)[:, 1]
