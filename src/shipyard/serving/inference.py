"""One batch of predictions, run in the deployment's thread: features, input frame, model, log.

Rows that name entities get their features in one online read for the whole batch (one round
trip per view, on-demand features computed by the training code); rows sent as complete
`instances` skip it. The model sees one frame in its signature's column order and dtypes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError, ShipyardError
from shipyard.features.online import OnlineStore
from shipyard.features.online_read import OnlineReader
from shipyard.models import Column, Model
from shipyard.predictions import PredictionBatch, PredictionWriter

logger = logging.getLogger("shipyard.serving")
_NUMERIC = {"Int32", "Int64", "Float32", "Float64"}
_NUMPY = {"Int32": np.int64, "Int64": np.int64, "Float32": np.float64, "Float64": np.float64,
          "Bool": np.bool_}


class ModelFailedError(ShipyardError):
    """The model raised on a batch; the details are in the server log, never in the answer."""

    http_status = 500


@dataclass(frozen=True)
class LoadedModel:
    """A model version ready to serve, with what the hot path needs worked out once."""

    model: Model
    name: str
    version: int
    inputs: tuple[Column, ...]
    feature_service: str | None
    is_numeric: bool  # every input is a number: the frame is one float matrix
    has_proba: bool
    columns: pd.Index  # built once: making a string index per frame costs more than the model

    @classmethod
    def of(cls, model: Model) -> LoadedModel:
        """Prepare a loaded model for serving."""
        inputs = model.signature.inputs
        return cls(model, model.version.name, model.version.version, inputs,
                   model.version.feature_service,
                   all(c.dtype.name in _NUMERIC for c in inputs), model.has_proba,
                   pd.Index([c.name for c in inputs], dtype=object))

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(slots=True)
class PredictItem:
    """One request's rows: entity rows to look features up for, or complete input columns."""

    request_id: str
    arrived_us: int
    size: int
    entity_rows: list[dict[str, Any]] | None = None  # join keys and request data per row
    instances: dict[str, list[Any]] | None = None  # the model's input columns
    model: LoadedModel | None = None  # an experiment's variant (None: the deployment's version)
    variant: str | None = None
    experiment: str | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The answer to one request."""

    version: int
    predictions: list[Any]
    probabilities: list[list[float]] | None


def pin_threads(threads: int = 1) -> None:
    """Cap OpenMP and BLAS pools of the calling thread (OpenMP's limit is per thread).

    On a busy machine a tree model's OpenMP threads only contend: a single-row predict
    that takes a millisecond on one thread can take a second on spinning threads.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def input_matrix(loaded: LoadedModel, columns: dict[str, list[Any]]) -> np.ndarray:
    """A numeric model's input: one float row per prediction, signature order, nulls as NaN."""
    return np.array([columns[n] for n in loaded.columns], dtype=np.float64).T


def input_frame(loaded: LoadedModel, columns: dict[str, list[Any]]) -> pd.DataFrame:
    """The model's input frame: signature columns in order, nulls as NaN in numbers."""
    if loaded.is_numeric:  # one float block: the cheapest frame to build and to convert
        return pd.DataFrame(input_matrix(loaded, columns), columns=loaded.columns, copy=False)
    data = {}
    for column in loaded.inputs:
        values = columns[column.name]
        kind = column.dtype.name
        if kind in _NUMERIC:
            data[column.name] = np.array(values, dtype=np.float64)
        elif kind == "UnixTimestamp":
            data[column.name] = pd.to_datetime(values, utc=True)
        elif kind in _NUMPY and None not in values:
            data[column.name] = np.array(values, dtype=_NUMPY[kind])
        else:
            data[column.name] = np.array(values, dtype=object)
    return pd.DataFrame(data, columns=loaded.columns, copy=False)


def warm_up(loaded: LoadedModel) -> None:
    """One prediction on a row of zeros, so the first request does not pay for lazy setup."""
    zeros = {"String": "", "Bool": False, "UnixTimestamp": 0}
    row = {c.name: [zeros.get(c.dtype.name, 0)] for c in loaded.inputs}
    try:
        predict_columns(loaded, row)
    except Exception as exc:  # a model may refuse zeros; it is only a warm-up
        logger.debug("Warm-up of %s failed: %s", loaded.ref, exc)


def predict_columns(loaded: LoadedModel, columns: dict[str, list[Any]]
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels and probabilities (None without them) for the model's input columns.

    A numeric model runs on a float matrix (no DataFrame, no second validation: the matrix
    is built in signature order); others on a frame the signature checks.
    """
    if loaded.is_numeric:
        return loaded.model.predict_both_matrix(input_matrix(loaded, columns))
    return loaded.model.predict_both(input_frame(loaded, columns))


def concat_columns(parts: Sequence[tuple[dict[str, list[Any]], int]]) -> dict[str, list[Any]]:
    """Columns of several row groups, one after the other; a column a group lacks is null."""
    if len(parts) == 1:
        return parts[0][0]
    names = list(dict.fromkeys(name for columns, _ in parts for name in columns))
    return {name: [v for columns, n in parts for v in columns.get(name, [None] * n)]
            for name in names}


class BatchRunner:
    """Runs the batches of one deployment (called in its batcher's thread)."""

    def __init__(self, current: Callable[[], LoadedModel | None], reader: OnlineReader,
                 store: OnlineStore, *, writer: PredictionWriter | None,
                 observe: Callable[[int, float, float], object]) -> None:
        self.current = current
        self.reader = reader
        self.store = store
        self.writer = writer
        self.observe = observe  # (rows, feature seconds, model seconds)
        self._pinned: LoadedModel | None = None

    def __call__(self, items: Sequence[PredictItem]) -> list[ItemResult | BaseException]:
        loaded = self.current()
        if loaded is None:
            raise ShipyardError("No model version is loaded.", hint="Retry in a moment.")
        if loaded is not self._pinned:  # a new version may have loaded a new thread pool
            pin_threads()
            self._pinned = loaded
        if all(i.model is None for i in items):
            return self._group(loaded, items)
        groups: dict[int, tuple[LoadedModel, list[PredictItem]]] = {}  # experiment variants
        for item in items:
            model = item.model or loaded
            groups.setdefault(id(model), (model, []))[1].append(item)
        results: dict[int, ItemResult | BaseException] = {}
        for model, group in groups.values():
            for item, result in zip(group, self._group(model, group), strict=True):
                results[id(item)] = result
        return [results[id(i)] for i in items]

    def _group(self, loaded: LoadedModel, items: Sequence[PredictItem]
               ) -> list[ItemResult | BaseException]:
        try:
            return list(self._run(loaded, items))
        except InvalidInputError as exc:
            if len(items) == 1:
                return [exc]
            return [self._alone(loaded, item) for item in items]  # find whose request it was

    def _alone(self, loaded: LoadedModel, item: PredictItem) -> ItemResult | BaseException:
        try:
            return self._run(loaded, [item])[0]
        except InvalidInputError as exc:
            return exc

    def _run(self, loaded: LoadedModel, items: Sequence[PredictItem]) -> list[ItemResult]:
        started = time.perf_counter()
        lookups = [i for i in items if i.entity_rows is not None]
        given = [i for i in items if i.entity_rows is None]
        ordered = lookups + given
        parts: list[tuple[dict[str, list[Any]], int]] = []
        if lookups:
            parts.append(self._features(loaded, lookups))
        parts += [(i.instances or {}, i.size) for i in given]
        columns = concat_columns(parts)
        fetched = time.perf_counter()
        try:
            labels, proba = predict_columns(loaded, columns)
            predictions = labels.tolist()
            probabilities = None if proba is None else proba.tolist()
        except ShipyardError:
            raise
        except Exception:
            ids = ", ".join(i.request_id for i in ordered)
            logger.exception("Model %s failed on requests %s", loaded.ref, ids)
            raise ModelFailedError(f"Model {loaded.ref!r} failed on this request.",
                                   hint="The server log has the details under the request "
                                        "id; the model's owner can reproduce it from there."
                                   ) from None
        done = time.perf_counter()
        self.observe(len(predictions), fetched - started, done - fetched)
        if self.writer is not None:
            tagged = any(i.variant is not None for i in ordered)
            self.writer.append(PredictionBatch(
                loaded.name, loaded.version,
                [i.request_id for i in ordered for _ in range(i.size)],
                [i.arrived_us for i in ordered for _ in range(i.size)],
                columns, predictions, probabilities,
                [i.variant for i in ordered for _ in range(i.size)] if tagged else None,
                [i.experiment for i in ordered for _ in range(i.size)] if tagged else None,
                round((done - started) * 1000, 4)))
        results: dict[int, ItemResult] = {}
        offset = 0
        for item in ordered:
            end = offset + item.size
            results[id(item)] = ItemResult(
                loaded.version, predictions[offset:end],
                None if probabilities is None else probabilities[offset:end])
            offset = end
        return [results[id(i)] for i in items]

    def _features(self, loaded: LoadedModel, items: Sequence[PredictItem]
                  ) -> tuple[dict[str, list[Any]], int]:
        if loaded.feature_service is None:
            raise InvalidInputError(f"Model {loaded.ref!r} was registered without a feature "
                                    "service, so the server cannot look its features up.",
                                    hint='Send complete feature rows as "instances".')
        rows = [row for item in items for row in item.entity_rows or ()]
        plan = self.reader.plan(None, loaded.feature_service, False)
        columns = self.reader.read(self.store, plan, rows)
        for column in loaded.inputs:  # request data the model takes as it is (e.g. amount)
            if column.name not in columns:
                columns[column.name] = [row.get(column.name) for row in rows]
        return columns, len(rows)
