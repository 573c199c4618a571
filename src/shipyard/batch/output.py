"""The output folder of a batch job: atomic partition files and a manifest of those done.

Each partition becomes `part-NNNNN.parquet`, written to a hidden temporary file, synced and
renamed, so a reader (or a crash) never sees half a file. The manifest, `_manifest.jsonl`,
starts with the run's header and gains one line per finished partition; a rerun with the
same run id skips those and rewrites any other (a file whose line is missing is rewritten
under the same name, so no row is ever written twice). `_SUCCESS` marks a finished run.
Names starting with '_' or '.' are skipped by pandas, pyarrow, DuckDB globs and Spark.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.core.errors import ConflictError

MANIFEST = "_manifest.jsonl"
SUCCESS = "_SUCCESS"
_RESUMABLE = ("run_id", "model", "input", "chunk_rows", "features_at", "partitions", "engine")


def partition_file(index: int) -> str:
    """The file name of partition `index`."""
    return f"part-{index:05d}.parquet"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_partition(folder: Path, index: int, schema: pa.Schema,
                    tables: Iterable[pa.Table]) -> int:
    """Write the tables as partition `index`, atomically; return its row count."""
    final = folder / partition_file(index)
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    rows = 0
    try:
        with open(tmp, "wb") as fh:
            # dictionaries pay off for text (model name, run id: one value each), not numbers
            text = [f.name for f in schema if pa.types.is_string(f.type)
                    or pa.types.is_large_string(f.type)]
            with pq.ParquetWriter(fh, schema, use_dictionary=text) as writer:
                for table in tables:
                    writer.write_table(table)
                    rows += table.num_rows
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(folder)
    return rows


def read_manifest(folder: Path) -> tuple[dict[str, Any] | None, dict[int, int]]:
    """The header of the run in `folder` and its finished partitions (index -> rows)."""
    path = folder / MANIFEST
    if not path.exists():
        return None, {}
    header, done = None, {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash: that partition is redone
            continue
        if header is None:
            header = entry
        elif "partition" in entry:
            done[int(entry["partition"])] = int(entry["rows"])
    return header, done


def check_output(folder: Path, *, run_id: str | None, overwrite: bool) -> bool:
    """Whether `folder` can take this run's output; True when it holds the run to resume.

    The same run id, unfinished, is resumed (with or without `overwrite`); a finished one is
    done again only with `overwrite`. Anything else there is a ConflictError unless
    `overwrite` is set.
    """
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return False
    header, _ = read_manifest(folder) if folder.is_dir() else (None, {})
    finished = (folder / SUCCESS).exists()
    if header is not None and run_id is not None and header.get("run_id") == run_id:
        return not (finished and overwrite)  # an unfinished run is finished, never redone
    if overwrite:
        return False
    if header is not None:
        raise ConflictError(
            f"Output {str(folder)!r} holds {'finished' if finished else 'unfinished'} run "
            f"{header.get('run_id')!r}.",
            hint="Pass overwrite=True (--overwrite) to replace it" + (
                "." if finished else f", or run_id={header.get('run_id')!r} to finish it."))
    raise ConflictError(f"Output {str(folder)!r} already exists.",
                        hint="Pass overwrite=True (--overwrite) to replace it, or choose "
                             "another output path.")


class OutputFolder:
    """The output of one run: its manifest, finished partitions and the success marker."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def resumable(self, header: dict[str, Any]) -> dict[int, int]:
        """The partitions done by the run in the folder, which must be the run of `header`."""
        old, done = read_manifest(self.folder)
        changed = [k for k in _RESUMABLE if old is None or old.get(k) != header.get(k)]
        if changed:
            raise ConflictError(
                f"Run {header['run_id']!r} cannot resume: its {', '.join(changed)} changed "
                f"(was {[None if old is None else old.get(k) for k in changed]}, now "
                f"{[header.get(k) for k in changed]}).",
                hint="Rerun it as it was, or pass overwrite=True to start again.")
        return done

    def start(self, header: dict[str, Any], *, resume: bool) -> dict[int, int]:
        """Start (or resume) the run described by `header`; return the partitions done."""
        if resume:
            done = self.resumable(header)
            for stale in self.folder.glob(".part-*.tmp"):
                stale.unlink(missing_ok=True)
            (self.folder / SUCCESS).unlink(missing_ok=True)
            return done
        if self.folder.is_dir():
            shutil.rmtree(self.folder)
        elif self.folder.exists():
            self.folder.unlink()
        self.folder.mkdir(parents=True)
        self._append(header)
        return {}

    def describe(self, header: dict[str, Any]) -> None:
        """Write the manifest's header into output another writer made (Spark's)."""
        (self.folder / MANIFEST).unlink(missing_ok=True)
        self._append(header)

    def record(self, index: int, rows: int) -> None:
        """Note partition `index` as done (after its file was renamed into place)."""
        self._append({"partition": index, "rows": rows})

    def finish(self) -> None:
        """Mark the run finished."""
        (self.folder / SUCCESS).write_bytes(b"")
        _fsync_dir(self.folder)

    def _append(self, entry: dict[str, Any]) -> None:
        with open(self.folder / MANIFEST, "a") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
