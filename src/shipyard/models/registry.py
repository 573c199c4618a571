"""`project.models`: register immutable, numbered versions; aliases, tags, lineage, load."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from shipyard.core.environment import who
from shipyard.core.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.core.time import to_utc, utc_now
from shipyard.models import sqlite_read
from shipyard.models.flavors import ModelInfo, detect_flavor, get_flavor
from shipyard.models.model import Model
from shipyard.models.package import read_manifest, write_package
from shipyard.models.records import ModelVersion, RegisteredModel, ServiceInputs, version_from_row
from shipyard.models.refs import ModelRef, check_alias, check_model_name, check_version, parse_ref
from shipyard.models.signature import Column, Signature, dtype_of, is_dataframe

# SQLAlchemy (and the table definitions) are imported by the methods that use them: loading
# a model from a SQLite file reads through `sqlite_read` and never imports them.
if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from shipyard.artifacts import ArtifactStore
    from shipyard.metadata.db import Database

Runtime = Literal["native", "onnx"]
_RETRIES = 10
_KEY = re.compile(r"[^\x00-\x1f]{1,250}")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


class ModelRegistry:
    """Model versions of one project: metadata in the DB, packages in the artifact store."""

    def __init__(self, db: Database, project: str, artifacts: ArtifactStore, *,
                 service_inputs: Callable[[str], ServiceInputs],
                 definitions_version: Callable[[], int | None],
                 git_commit: Callable[[], str | None]) -> None:
        self.db = db
        self.project = project
        self.artifacts = artifacts
        self._service_inputs = service_inputs
        self._definitions_version = definitions_version
        self._git_commit = git_commit

    # -- registering ---------------------------------------------------------------------

    def register(self, name: str, model: Any, *, run: str | _HasId | None = None,
                 dataset: str | _HasId | None = None, feature_service: str | None = None,
                 description: str = "", tags: Mapping[str, object] | None = None,
                 signature: Signature | pd.DataFrame | None = None, onnx: bool = False,
                 flavor: str | None = None, allow_pickle: bool = False) -> ModelVersion:
        """Package `model` and store it as the next version of `name` (1, 2, 3, ...)."""
        check_model_name(name)
        flav = detect_flavor(model, name=flavor, allow_pickle=allow_pickle)
        info = flav.describe(model)
        run_id, commit = self._run_lineage(run)
        dataset_id = None if dataset is None else str(getattr(dataset, "id", dataset))
        feature_service = feature_service or getattr(dataset, "feature_service", None)
        service = self._service_inputs(feature_service) if feature_service else None
        sig = _signature(signature, service, info, feature_service)
        tag_values = _tags(tags or {})
        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
            write_package(Path(tmp), model, flav, info, sig, feature_service=feature_service,
                          onnx=onnx)
            artifact = self.artifacts.put_dir(tmp, name=name)
        row = {"project": self.project, "name": name, "created_by": who(), "flavor": flav.name,
               "artifact_sha256": artifact.sha256, "artifact_size": artifact.size,
               "signature": json.dumps(sig.to_spec()), "has_onnx": bool(onnx),
               "run_id": run_id, "dataset_id": dataset_id, "feature_service": feature_service,
               "definitions_version": service.definitions_version if service
               else self._definitions_version(),
               "git_commit": commit if run_id else self._git_commit(),
               "description": description, "archived": False}
        version = self._insert(row, tag_values, service.features if service else ())
        return self.get_version(f"{name}/{version}")

    def _run_lineage(self, run: str | _HasId | None) -> tuple[str | None, str | None]:
        if run is None:
            return None, None
        import sqlalchemy as sa

        from shipyard.models.queries import runs

        run_id = str(getattr(run, "id", run))
        query = sa.select(runs.c.git_commit).where(runs.c.id == run_id,
                                                   runs.c.project == self.project)
        with self.db.read() as conn:
            found = conn.execute(query).first()
        if found is None:
            raise NotFoundError(f"Run {run_id!r} does not exist in project {self.project!r}.",
                                hint="Pass the run from project.tracking.start_run(), or its id.")
        return run_id, found.git_commit

    def _insert(self, row: dict[str, Any], tags: dict[str, str],
                features: tuple[tuple[str, str], ...]) -> int:
        import sqlalchemy as sa

        from shipyard.metadata.upsert import upsert  # writes only: loading skips its dialects
        from shipyard.models.queries import mf, mm, mt, mv

        key = {"project": self.project, "name": row["name"]}
        for attempt in range(_RETRIES):
            try:
                with self.db.write() as conn:
                    now = utc_now()
                    upsert(conn, mm, [{**key, "created_at": now}], keys=("project", "name"),
                           update=False)
                    # lock the model's row: PostgreSQL registrations then queue instead of
                    # racing (SQLite's BEGIN IMMEDIATE already serialises writers)
                    conn.execute(sa.select(mm.c.name).where(mm.c.project == self.project,
                                 mm.c.name == row["name"]).with_for_update())
                    latest = conn.execute(sa.select(sa.func.max(mv.c.version)).where(
                        mv.c.project == self.project, mv.c.name == row["name"])).scalar()
                    version = (latest or 0) + 1
                    conn.execute(mv.insert().values(**row, version=version, created_at=now))
                    at = {**key, "version": version}
                    upsert(conn, mt, [{**at, "key": k, "value": v} for k, v in tags.items()],
                           keys=("project", "name", "version", "key"))
                    upsert(conn, mf, [{**at, "view": v, "feature": f} for v, f in features],
                           keys=("project", "name", "version", "view", "feature"), update=False)
                    return version
            except sa.exc.IntegrityError:  # another process took this number: try the next
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    # -- reading -------------------------------------------------------------------------

    def get_version(self, ref: str | ModelRef) -> ModelVersion:
        """The version `ref` names: 'fraud/3', 'fraud@champion' or 'fraud' (latest)."""
        parsed = parse_ref(ref)
        with self.db.sqlite_read() as raw:
            found = None if raw is None else sqlite_read.find_version(raw, self.project, parsed)
        if found is not None:
            return found
        with self.db.read() as conn:  # another database, or not found (the error says why)
            row = self._resolve(conn, parsed)
            return self._records(conn, [row])[0]

    def list_versions(self, name: str | None = None, *, tags: Mapping[str, str] | None = None,
                      feature_view: str | None = None,
                      include_archived: bool = False) -> list[ModelVersion]:
        """Versions by name then number; filter by name, tags, or a feature view they use."""
        import sqlalchemy as sa

        from shipyard.models.queries import mf, mt, mv

        where = [mv.c.project == self.project]
        if name is not None:
            where.append(mv.c.name == check_model_name(name))
        if not include_archived:
            where.append(mv.c.archived == sa.false())
        for key, value in (tags or {}).items():
            where.append(sa.exists().where(mt.c.project == mv.c.project, mt.c.name == mv.c.name,
                                           mt.c.version == mv.c.version, mt.c.key == key,
                                           mt.c.value == str(value)))
        if feature_view is not None:
            where.append(sa.exists().where(mf.c.project == mv.c.project, mf.c.name == mv.c.name,
                                           mf.c.version == mv.c.version,
                                           mf.c.view == feature_view))
        query = sa.select(mv).where(*where).order_by(mv.c.name, mv.c.version)
        with self.db.read() as conn:
            return self._records(conn, conn.execute(query).all())

    def list_models(self, *, name_contains: str | None = None) -> list[RegisteredModel]:
        """Every registered model, by name, with its latest version and aliases."""
        import sqlalchemy as sa

        from shipyard.models.queries import ma, mm, mv

        where = [mm.c.project == self.project]
        if name_contains:
            where.append(mm.c.name.contains(name_contains, autoescape=True))
        counts = (sa.select(mv.c.name, sa.func.count().label("n"),
                            sa.func.max(sa.case((mv.c.archived == sa.false(), mv.c.version)))
                            .label("latest"))
                  .where(mv.c.project == self.project).group_by(mv.c.name).subquery())
        query = (sa.select(mm.c.name, mm.c.created_at, counts.c.n, counts.c.latest)
                 .outerjoin(counts, counts.c.name == mm.c.name).where(*where)
                 .order_by(mm.c.name))
        aliases = sa.select(ma.c.name, ma.c.alias, ma.c.version).where(
            ma.c.project == self.project).order_by(ma.c.alias)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            by_model: dict[str, dict[str, int]] = {}
            for a in conn.execute(aliases):
                by_model.setdefault(a.name, {})[a.alias] = a.version
        return [RegisteredModel(r.name, to_utc(r.created_at), r.n or 0, r.latest,
                                by_model.get(r.name, {})) for r in rows]

    # -- changing what may change --------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point `name@alias` at `version`, in one atomic step (moving it if it exists)."""
        from shipyard.metadata.upsert import upsert
        from shipyard.models.queries import ma

        target = ModelRef(check_model_name(name), version=check_version(version))
        with self.db.write() as conn:
            row = self._resolve(conn, target)
            if row.archived:
                raise ConflictError(f"Model {target} is archived; an alias cannot point at it.",
                                    hint="Unarchive it first, or pick another version.")
            upsert(conn, ma, [{"project": self.project, "name": name,
                               "alias": check_alias(alias), "version": target.version,
                               "updated_at": utc_now()}], keys=("project", "name", "alias"))
        return self.get_version(target)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove `name@alias`."""
        from shipyard.models.queries import ma

        with self.db.write() as conn:
            done = conn.execute(ma.delete().where(ma.c.project == self.project,
                                                  ma.c.name == check_model_name(name),
                                                  ma.c.alias == check_alias(alias)))
        if not done.rowcount:
            raise NotFoundError(f"Model {name!r} has no alias {alias!r}.",
                                hint=f"See `shipyard models show {name}`.")

    def update_version(self, ref: str | ModelRef, *, description: str | None = None,
                       tags: Mapping[str, object | None] | None = None) -> ModelVersion:
        """Change a version's description and tags (a tag set to None is removed)."""
        from shipyard.metadata.upsert import upsert
        from shipyard.models.queries import mt, mv

        with self.db.write() as conn:
            row = self._resolve(conn, parse_ref(ref))
            at = {"project": self.project, "name": row.name, "version": row.version}
            if description is not None:
                conn.execute(mv.update().where(*_match(mv, at)).values(description=description))
            tags = tags or {}
            removed = [k for k, v in tags.items() if v is None]
            if removed:
                conn.execute(mt.delete().where(*_match(mt, at), mt.c.key.in_(removed)))
            kept = _tags({k: v for k, v in tags.items() if v is not None})
            upsert(conn, mt, [{**at, "key": k, "value": v} for k, v in kept.items()],
                   keys=("project", "name", "version", "key"))
        return self.get_version(ModelRef(row.name, version=row.version))

    def archive(self, ref: str | ModelRef, *, archived: bool = True) -> ModelVersion:
        """Archive a version (hidden from 'latest' and lists); archived=False restores it."""
        import sqlalchemy as sa

        from shipyard.models.queries import ma, mv

        parsed = parse_ref(ref)
        if parsed.version is None:
            raise InvalidInputError(f"Archive needs a version number, not {str(parsed)!r}.",
                                    hint=f"Write {parsed.name}/VERSION.")
        with self.db.write() as conn:
            row = self._resolve(conn, parsed)
            held = conn.execute(sa.select(ma.c.alias).where(
                ma.c.project == self.project, ma.c.name == row.name,
                ma.c.version == row.version)).scalars().all()
            if archived and held:
                raise ConflictError(f"Model {parsed} is served by alias(es) {sorted(held)}.",
                                    hint="Move or delete those aliases before archiving it.")
            conn.execute(mv.update().where(*_match(mv, {"project": self.project, "name": row.name,
                                                        "version": row.version}))
                         .values(archived=archived))
        return self.get_version(parsed)

    # -- loading -------------------------------------------------------------------------

    def load(self, ref: str | ModelRef, *, runtime: Runtime = "native") -> Model:
        """Load a version ready to predict; every file is checked against its sha256."""
        version = self.get_version(ref)
        files = self.artifacts.list_dir(version.artifact)
        manifest = read_manifest(lambda n: self.artifacts.get_bytes(files[n]),
                                 {n: r.sha256 for n, r in files.items()})
        if runtime == "onnx":
            if not manifest.onnx_file:
                raise NotFoundError(f"Model {version.ref} has no ONNX copy.",
                                    hint="Register it with onnx=True.")
            flavor, file = get_flavor("onnx"), manifest.onnx_file
        elif runtime == "native":
            flavor, file = get_flavor(manifest.flavor), manifest.data["model_file"]
        else:
            raise InvalidInputError(f"Unknown runtime {runtime!r}.", hint="Use 'native' or 'onnx'.")
        predictor = flavor.load(self.artifacts.get_bytes(files[file]), manifest.data)
        return Model(version, manifest.signature, predictor, runtime=runtime,
                     flavor=manifest.flavor)

    # -- rows ----------------------------------------------------------------------------

    def _resolve(self, conn: sa.Connection, ref: ModelRef) -> Any:
        from shipyard.models import queries

        params: dict[str, Any] = {"project": self.project, "name": ref.name}
        if ref.alias is not None:
            query, params["alias"] = queries.BY_ALIAS, ref.alias
        elif ref.version is not None:
            query, params["version"] = queries.BY_VERSION, ref.version
        else:
            query = queries.LATEST
        row = conn.execute(query, params).first()
        if row is None:
            raise self._not_found(conn, ref)
        return row

    def _not_found(self, conn: sa.Connection, ref: ModelRef) -> NotFoundError:
        import sqlalchemy as sa

        from shipyard.models.queries import ma, mm, mv

        versions = conn.execute(sa.select(mv.c.version).where(
            mv.c.project == self.project, mv.c.name == ref.name).order_by(mv.c.version)
        ).scalars().all()
        if not versions:
            known = conn.execute(sa.select(mm.c.name).where(mm.c.project == self.project)
                                 .order_by(mm.c.name)).scalars().all()
            return NotFoundError(f"Model {ref.name!r} is not registered.",
                                 hint=f"Known models: {list(known)}. See `shipyard models list`.")
        aliases = conn.execute(sa.select(ma.c.alias).where(
            ma.c.project == self.project, ma.c.name == ref.name)).scalars().all()
        what = (f"alias {ref.alias!r}" if ref.alias else f"version {ref.version}"
                if ref.version else "version that is not archived")
        return NotFoundError(f"Model {ref.name!r} has no {what}.",
                             hint=f"Versions: {list(versions)}; aliases: {sorted(aliases)}. "
                                  f"See `shipyard models show {ref.name}`.")

    def _records(self, conn: sa.Connection, rows: list[Any]) -> list[ModelVersion]:
        from shipyard.models import queries

        names = sorted({r.name for r in rows})
        extra: dict[tuple[str, int], dict[str, list[tuple[str, str]]]] = {}
        for item in conn.execute(queries.EXTRAS, {"project": self.project, "names": names}):
            by_kind = extra.setdefault((item.name, item.version), {})
            by_kind.setdefault(item.kind, []).append((item.a, item.b))
        return [version_from_row(r, extra.get((r.name, r.version), {})) for r in rows]

    def resolve(self, ref: str | ModelRef) -> ModelRef:
        """The name and version number `ref` points at now (one query; for hot paths)."""
        parsed = parse_ref(ref)
        with self.db.sqlite_read() as raw:
            found = None if raw is None else sqlite_read.find_row(raw, self.project, parsed)
        if found is not None:
            return ModelRef(found.name, version=found.version)
        with self.db.read() as conn:
            row = self._resolve(conn, parsed)
        return ModelRef(row.name, version=row.version)


def _match(table: sa.Table, values: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    return [table.c[k] == v for k, v in values.items()]


def _output(info: ModelInfo) -> Column | None:
    if info.task == "classifier" and info.classes is not None:
        return Column("prediction", dtype_of(np.asarray(info.classes).dtype, "prediction"))
    if info.task == "regressor":
        return Column("prediction", dtype_of(np.dtype("float64"), "prediction"))
    return None


def _signature(given: Signature | pd.DataFrame | None, service: ServiceInputs | None,
               info: ModelInfo, feature_service: str | None) -> Signature:
    output = _output(info)
    if isinstance(given, Signature):
        sig, source = (given if given.output else Signature(given.inputs, output)), "the signature"
    elif is_dataframe(given):
        sig, source = Signature.from_frame(given, output), "the example frame"
    elif given is not None:
        raise InvalidInputError(f"signature= takes a Signature or an example DataFrame, not "
                                f"{type(given).__name__}.", hint="Pass X_train.head().")
    elif service is not None:
        sig, source = Signature(service.columns, output), f"feature service {feature_service!r}"
    else:
        raise InvalidInputError("Cannot tell which input columns the model takes.",
                                hint="Pass feature_service='...' or signature=<example frame>.")
    return sig.select(info.feature_names, source=source) if info.feature_names else sig


def _tags(tags: Mapping[str, object]) -> dict[str, str]:
    for key in tags:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidInputError(f"Tag key {key!r} is not 1-250 printable characters.",
                                    hint="Use a short key such as 'team'.")
    return {k: str(v) for k, v in tags.items()}
