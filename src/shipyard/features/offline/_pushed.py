"""Pushed rows on disk: one Parquet file per push in `<batch source path>.pushed/`."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.core.errors import InvalidInputError

_GLOB_CHARS = "*?["


def pushed_folder(path: Path) -> Path:
    """The folder that holds the rows pushed to the source at `path`."""
    if any(ch in str(path) for ch in _GLOB_CHARS):
        raise InvalidInputError(f"Cannot push to source {str(path)!r}: its path is a glob.",
                                hint="Give the PushSource's batch_source one file or folder.")
    return path.with_name(path.name + ".pushed")


def pushed_glob(path: Path) -> str | None:
    """A glob over the pushed files of the source at `path`, or None when there are none."""
    if any(ch in str(path) for ch in _GLOB_CHARS):
        return None
    folder = pushed_folder(path)
    if not folder.is_dir() or next(folder.glob("*.parquet"), None) is None:
        return None
    return str(folder / "*.parquet")


def append_parquet(folder: Path, table: pa.Table) -> Path:
    """Write `table` as a new file in `folder`: temp file, fsync, rename, fsync the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = folder / f".{name}.tmp"
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
    finally:
        tmp.unlink(missing_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return folder / name
