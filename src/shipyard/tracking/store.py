"""`project.tracking`: start runs, and find, read and compare them."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from shipyard.artifacts import ArtifactRef, ArtifactStore
from shipyard.core.environment import environment, who
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.core.time import to_utc, utc_now
from shipyard.metadata.db import Database
from shipyard.metadata.tables import (
    experiments,
    run_artifacts,
    run_metrics,
    run_params,
    run_tags,
    runs,
)
from shipyard.metadata.upsert import upsert
from shipyard.tracking.git import git_state
from shipyard.tracking.query import matches, parse_filter, parse_order, sort_runs
from shipyard.tracking.records import Experiment, Metric, RunInfo, check_key
from shipyard.tracking.run import Run

_NAME = re.compile(r"[^\x00-\x1f]{1,200}")
_CHUNK = 500  # ids per IN (...) query


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(f"{kind} name {name!r} is not 1-200 printable characters.",
                                hint=f"Name the {kind.lower()} e.g. 'fraud'.")
    return name


class Tracking:
    """Experiments and runs of one project, in the metadata DB and the artifact store."""

    def __init__(self, db: Database, project: str, artifacts: ArtifactStore, root: Path) -> None:
        self.db = db
        self.project = project
        self.artifacts = artifacts
        self.root = root

    # -- writing -------------------------------------------------------------------------

    def start_run(self, *, experiment: str = "default", name: str | None = None,
                  params: dict[str, object] | None = None,
                  tags: dict[str, object] | None = None) -> Run:
        """Start a run (status running); `with` it so it ends finished or failed."""
        _check_name("Experiment", experiment)
        run_id = uuid.uuid4().hex
        name = _check_name("Run", name) if name is not None else f"run-{run_id[:8]}"
        git = git_state(self.root)
        now = utc_now()
        with self.db.write() as conn:
            upsert(conn, experiments, [{"project": self.project, "name": experiment,
                                        "created_at": now}], keys=("project", "name"),
                   update=False)
            conn.execute(runs.insert().values(
                id=run_id, project=self.project, experiment=experiment, name=name,
                status="running", start_time=now, git_commit=git.commit, git_dirty=git.dirty,
                environment=json.dumps(environment()), created_by=who()))
        run = Run(self, run_id, name, experiment, git.commit)
        if params:
            run.log_params(params)
        if tags:
            run.set_tags(tags)
        return run

    # -- reading -------------------------------------------------------------------------

    def list_experiments(self) -> list[Experiment]:
        """Every experiment, by name, with its number of runs."""
        count = (sa.select(runs.c.experiment, sa.func.count().label("n"))
                 .where(runs.c.project == self.project).group_by(runs.c.experiment).subquery())
        query = (sa.select(experiments.c.name, experiments.c.created_at, count.c.n)
                 .outerjoin(count, count.c.experiment == experiments.c.name)
                 .where(experiments.c.project == self.project).order_by(experiments.c.name))
        with self.db.read() as conn:
            return [Experiment(r.name, to_utc(r.created_at), r.n or 0) for r in conn.execute(query)]

    def get_run(self, run_id: str) -> RunInfo:
        """One run by id (or a unique prefix of at least 6 characters of it)."""
        clean = str(run_id).strip().lower()
        if not re.fullmatch(r"[0-9a-f]{6,32}", clean):
            raise NotFoundError(f"Run {run_id!r} does not exist.",
                                hint="Run ids are hex; see `shipyard runs list`.")
        where = runs.c.id == clean if len(clean) == 32 else runs.c.id.startswith(clean)
        found = self._load(sa.and_(runs.c.project == self.project, where), limit=2)
        if len(found) != 1:
            problem = "does not exist" if not found else "is ambiguous"
            raise NotFoundError(f"Run {run_id!r} {problem}.",
                                hint="Pass more of the id; see `shipyard runs list`.")
        return found[0]

    def list_runs(self, *, experiment: str | None = None, filter: str | None = None,
                  order_by: str | Sequence[str] | None = "start_time desc",
                  limit: int | None = None) -> list[RunInfo]:
        """Runs matching a filter such as `metrics.auc > 0.8 and params.model = 'lgbm'`."""
        clauses = parse_filter(filter)
        order = parse_order(order_by)
        where = runs.c.project == self.project
        if experiment is not None:
            where = sa.and_(where, runs.c.experiment == experiment)
        found = [r.as_mapping() for r in self._load(where) if matches(r.as_mapping(), clauses)]
        ordered = [r["run"] for r in sort_runs(found, order)]
        return ordered if limit is None else ordered[:limit]

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for one metric of a run, by step then time."""
        run = self.get_run(run_id)
        query = (sa.select(run_metrics).where(run_metrics.c.run_id == run.id,
                                              run_metrics.c.key == check_key("metric", key))
                 .order_by(run_metrics.c.step, run_metrics.c.timestamp, run_metrics.c.id))
        with self.db.read() as conn:
            return [_metric(r) for r in conn.execute(query)]

    def compare_runs(self, run_ids: Iterable[str]) -> pd.DataFrame:
        """Runs side by side: one column per run, one row per attribute, param and metric."""
        infos = [self.get_run(r) for r in run_ids]
        rows: dict[str, dict[str, Any]] = {}
        for info in infos:
            column = info.id[:8]
            base = {"name": info.name, "experiment": info.experiment, "status": info.status,
                    "start_time": info.start_time, "duration_s": info.duration_seconds,
                    "git_commit": (info.git_commit or "")[:12] or None}
            values = {**base, **{f"params.{k}": v for k, v in info.params.items()},
                      **{f"metrics.{k}": v for k, v in info.metrics.items()},
                      **{f"tags.{k}": v for k, v in info.tags.items()}}
            for key, value in values.items():
                rows.setdefault(key, {})[column] = value
        frame = pd.DataFrame.from_dict(rows, orient="index", dtype=object)
        return frame.reindex(columns=[i.id[:8] for i in infos])

    def download_artifact(self, run_id: str, name: str, dest: str | Path) -> Path:
        """Write a run's artifact (file or folder) to `dest`, verified."""
        info = self.get_run(run_id)
        if name not in info.artifacts:
            raise NotFoundError(f"Run {info.id} has no artifact {name!r}.",
                                hint=f"Its artifacts are {sorted(info.artifacts)}.")
        return self.artifacts.download(info.artifacts[name], dest)

    # -- loading rows --------------------------------------------------------------------

    def _load(self, where: sa.ColumnElement[bool], limit: int | None = None) -> list[RunInfo]:
        query = sa.select(runs).where(where).order_by(runs.c.start_time.desc()).limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            ids = [r.id for r in rows]
            params = _by_run(conn, run_params, ids)
            tags = _by_run(conn, run_tags, ids)
            metrics = _latest_metrics(conn, ids)
            artifacts = _by_run(conn, run_artifacts, ids)
        return [RunInfo(
            id=r.id, experiment=r.experiment, name=r.name, status=r.status,
            start_time=to_utc(r.start_time),
            end_time=None if r.end_time is None else to_utc(r.end_time),
            git_commit=r.git_commit, git_dirty=r.git_dirty,
            environment=json.loads(r.environment), created_by=r.created_by,
            params={p.key: p.value for p in params.get(r.id, [])},
            metrics=metrics.get(r.id, {}),
            tags={t.key: t.value for t in tags.get(r.id, [])},
            artifacts={a.name: ArtifactRef(a.sha256, a.size, a.name, a.kind)
                       for a in artifacts.get(r.id, [])},
        ) for r in rows]


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def _by_run(conn: sa.Connection, table: sa.Table, ids: list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for chunk in _chunks(ids):
        for row in conn.execute(sa.select(table).where(table.c.run_id.in_(chunk))):
            out.setdefault(row.run_id, []).append(row)
    return out


def _latest_metrics(conn: sa.Connection, ids: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for chunk in _chunks(ids):
        query = (sa.select(run_metrics).where(run_metrics.c.run_id.in_(chunk))
                 .order_by(run_metrics.c.step, run_metrics.c.timestamp, run_metrics.c.id))
        for row in conn.execute(query):  # later rows win: the latest step's value
            out.setdefault(row.run_id, {})[row.key] = _metric(row).value
    return out


def _metric(row: Any) -> Metric:
    return Metric(row.key, float("nan") if row.value is None else row.value, row.step,
                  to_utc(row.timestamp))


