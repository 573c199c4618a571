"""Planning a batch prediction: every check that can fail happens here, before any work."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from shipyard.batch.asof import AsofJoin
from shipyard.batch.inputs import EntityInput
from shipyard.batch.output import check_output, read_manifest
from shipyard.batch.scoring import PREDICTION, TIME, Scorer, class_labels, output_schema
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.time import to_utc, utc_now
from shipyard.features.catalog import Catalog, Request
from shipyard.features.definitions import Definition, OnDemandFeatureView
from shipyard.features.offline import ViewRead
from shipyard.features.retrieval import _check_key_types, timestamp_column, view_reads
from shipyard.features.transforms import bind_udf
from shipyard.models import Model, ModelRegistry, ModelVersion, parse_ref

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
DEFAULT_CHUNK_ROWS = 100_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class BatchJob:
    """A checked batch prediction, ready for an engine."""

    run_id: str
    version: ModelVersion
    scorer: Scorer
    input: EntityInput
    output: Path
    resume: bool  # the output holds this run, unfinished: finish it
    chunk_rows: int
    reads: list[ViewRead]
    time_range: tuple[datetime, datetime] | None  # entity times, to load only useful rows
    source_types: dict[str, dict[str, str]]
    header: dict[str, Any] = field(default_factory=dict)  # the manifest's first line

    @property
    def features_at(self) -> datetime | None:
        return self.scorer.features_at


@dataclass(frozen=True)
class PredictOptions:
    """What the caller asked for (see `Batch.predict`)."""

    model: str
    output: Path
    engine: str
    features_at: datetime | str
    run_id: str | None
    overwrite: bool
    chunk_rows: int
    keep_columns: tuple[str, ...]
    timestamp_column: str | None


def check_run_id(run_id: object) -> str:
    """A run id: 1-64 letters, digits, '_', '.', '-'."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidInputError(f"Run id {run_id!r} is not valid.",
                                hint="Use 1-64 letters, digits, '_', '.' or '-'.")
    return run_id


def parse_features_at(value: datetime | str) -> datetime | None:
    """'row' (each row's own time: None), 'now', or a timestamp."""
    if isinstance(value, str) and value.strip().lower() == "row":
        return None
    if isinstance(value, str) and value.strip().lower() == "now":
        return utc_now()
    return to_utc(value)


def plan_predict(options: PredictOptions, entities: object, *, models: ModelRegistry,
                 catalog: Callable[[], tuple[int, Catalog]],
                 definitions: Callable[[], Sequence[Definition]],
                 describe_source: Callable[[Any], dict[str, str]]) -> BatchJob:
    """Check the model, its feature service, the input and the output; build the job."""
    if options.chunk_rows < 1:
        raise InvalidInputError(f"chunk_rows must be positive, not {options.chunk_rows!r}.",
                                hint="e.g. chunk_rows=100_000.")
    run_id = check_run_id(options.run_id or uuid.uuid4().hex)
    resume = check_output(options.output, run_id=options.run_id, overwrite=options.overwrite)
    version = _version(models, options.model, options.output if resume else None)
    model = models.load(version.ref)
    request = _request(version, model, catalog)
    features_at = parse_features_at(options.features_at)
    data = EntityInput.of(entities)
    ts = _check_input(data, request, model, options, features_at)
    reads = view_reads(request) if request is not None else []
    keys = request.join_keys if request is not None else ()
    classes = class_labels(model)
    scorer = Scorer(model=model, request=request, udfs=_udfs(request, definitions),
                    timestamp_column=ts, features_at=features_at, keys=keys,
                    keep=options.keep_columns, run_id=run_id,
                    schema=output_schema(data.schema, keys, options.keep_columns, model, classes),
                    classes=classes)
    source_types = {r.source.path: describe_source(r.source) for r in reads}
    # a key of another kind than the source's (text vs numbers) would match nothing
    _check_key_types(AsofJoin({}, source_types), reads, data.schema.empty_table())
    header = {"run_id": run_id, "model": version.ref, "input": data.fingerprint(),
              "chunk_rows": options.chunk_rows, "engine": options.engine,
              "features_at": "row" if features_at is None else features_at.isoformat()}
    return BatchJob(run_id=run_id, version=version, scorer=scorer, input=data,
                    output=options.output, resume=resume, chunk_rows=options.chunk_rows,
                    reads=reads, time_range=_time_range(data, ts, features_at, reads),
                    source_types=source_types,
                    header=header)


def _version(models: ModelRegistry, ref: str, resuming: Path | None) -> ModelVersion:
    """The version `ref` names; a resumed run keeps the version it started with."""
    parsed = parse_ref(ref)
    if resuming is not None and parsed.version is None:
        header, _ = read_manifest(resuming)
        if header and header.get("model", "").startswith(f"{parsed.name}/"):
            return models.get_version(header["model"])
    return models.get_version(parsed)


def _request(version: ModelVersion, model: Model,
             catalog: Callable[[], tuple[int, Catalog]]) -> Request | None:
    """What the model's feature service retrieves (None: the model reads the input as is)."""
    service = version.feature_service
    if service is None:
        return None
    applied, current = catalog()
    if service not in current.feature_services:
        raise NotFoundError(
            f"Model {version.ref} reads feature service {service!r}, which is no longer "
            f"defined (definitions version {applied}).",
            hint="Restore the service and run `shipyard apply`, or score with a version trained "
                 "on a current service (see `shipyard models list`).")
    request = current.resolve(feature_service=service)
    provided = {*request.column_names(False), *(f.name for f in request.request_fields)}
    lost = [n for n in model.signature.names if n not in provided]
    if lost:
        raise InvalidInputError(
            f"Feature service {service!r} no longer provides {lost}, which model "
            f"{version.ref} needs.",
            hint="Put them back in the service and run `shipyard apply`, or retrain the model.")
    return request


def _udfs(request: Request | None, definitions: Callable[[], Sequence[Definition]],
          ) -> dict[str, Callable[[Any], Any]]:
    """The functions of the requested on-demand views, as applied (see `bind_udf`)."""
    if request is None or not request.on_demand_views:
        return {}
    found = {d.name: d for d in definitions() if isinstance(d, OnDemandFeatureView)}
    return {o.name: bind_udf(o, found.get(o.name)) for o in request.on_demand_views}


def _check_input(data: EntityInput, request: Request | None, model: Model,
                 options: PredictOptions, features_at: datetime | None) -> str | None:
    """Check the input's rows and columns; return its timestamp column (row mode)."""
    if data.num_rows == 0:
        raise InvalidInputError(f"The input {data.description} has no rows.",
                                hint="Pass at least one entity row.")
    schema = data.schema
    names = list(schema.names)
    needed: list[str] = []
    if request is not None:
        for key in request.join_keys:
            if key not in names:
                views = [v.name for v in request.views if key in request.catalog.join_keys(v)]
                raise InvalidInputError(f"The input has no entity column {key!r}, needed by "
                                        f"feature view(s) {views}.", hint=f"Its columns are {names}.")
        missing = [f.name for f in request.request_fields if f.name not in names]
        if missing:
            raise InvalidInputError(f"The input lacks request data {missing}, needed by on-demand "
                                    f"view(s) {list(request.on_demand)}.",
                                    hint=f"Add them to the input. Its columns are {names}.")
        clashes = [n for n in request.column_names(False) if n in names]
        if clashes:
            raise InvalidInputError(f"The input already has columns {clashes}, named like "
                                    "features of the service.", hint="Rename or drop them.")
        needed += [*request.join_keys, *(f.name for f in request.request_fields)]
    else:
        missing = [n for n in model.signature.names if n not in names]
        if missing:
            raise InvalidInputError(f"The input lacks model inputs {missing}.",
                                    hint=f"Model needs {model.signature.names}.")
        needed += model.signature.names
    _check_keep(options.keep_columns, names, needed)
    ts = None
    if features_at is None:
        ts = timestamp_column(schema.empty_table().to_pandas(), options.timestamp_column)
        if not pa.types.is_timestamp(schema.field(ts).type):
            raise InvalidInputError(f"Input column {ts!r} holds {schema.field(ts).type}, not "
                                    "timestamps.", hint="Store it as a Parquet timestamp, or "
                                                        "pass features_at=<time>.")
        needed.append(ts)
    data.check_columns(list(dict.fromkeys([*needed, *options.keep_columns])))
    return ts


def _check_keep(keep: Sequence[str], names: list[str], needed: list[str]) -> None:
    missing = [k for k in keep if k not in names]
    if missing:
        raise InvalidInputError(f"keep_columns {missing} are not in the input.",
                                hint=f"Its columns are {names}.")
    reserved = [k for k in keep if k in (TIME, PREDICTION, "model_name", "model_version",
                                         "run_id") or k.startswith("proba_")]
    if reserved:
        raise InvalidInputError(f"keep_columns {reserved} would overwrite output columns.",
                                hint="Rename them in the input.")


def _time_range(data: EntityInput, ts: str | None, features_at: datetime | None,
                reads: list[ViewRead]) -> tuple[datetime, datetime] | None:
    """The entity times (None: no views to join); null timestamps are an error."""
    if not reads:
        return None
    if features_at is not None or ts is None:
        at = features_at or utc_now()
        return at, at
    low, high, nulls = data.time_range(ts)
    if nulls or low is None or high is None:
        raise InvalidInputError(f"Input column {ts!r} has {nulls:,} missing timestamps.",
                                hint="Every entity row needs the time at which its features "
                                     "are wanted (or pass features_at=<time>).")
    return _EPOCH + timedelta(microseconds=low), _EPOCH + timedelta(microseconds=high)
