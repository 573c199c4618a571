"""The entity rows of a batch job: Parquet files read in bounded slices, or an in-memory table.

A job is cut into partitions of about `chunk_rows` rows. The cut depends only on the input
and `chunk_rows`, so a rerun of the same job finds the same partitions (that is what makes
resuming exact). A partition of a Parquet file is a row range read from the row groups that
hold it, cut along row groups where it can be (see `_file_spans`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shipyard.core.errors import InvalidInputError

GIANT_ROW_GROUP = 16  # a row group over 16 x chunk_rows is streamed whole, never cut


@dataclass(frozen=True)
class Partition:
    """Rows [start, stop) of one Parquet file, or of the in-memory table (file None)."""

    index: int
    file: str | None
    start: int
    stop: int
    data: bytes | None = None  # the rows of an in-memory input, as an Arrow IPC stream

    @property
    def rows(self) -> int:
        return self.stop - self.start


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = []
    for file in sorted(path.rglob("*.parquet")):
        parts = file.relative_to(path).parts
        if not any(p.startswith((".", "_")) for p in parts):
            files.append(file)
    return files


class EntityInput:
    """The input of a batch job: Parquet files, or a table (from a DataFrame)."""

    def __init__(self, *, files: Sequence[Path] = (), table: pa.Table | None = None,
                 description: str = "") -> None:
        self.files = [Path(f) for f in files]
        self.table = table
        self.description = description

    @classmethod
    def of(cls, entities: object) -> EntityInput:
        """A DataFrame, an Arrow table, or the path of a Parquet file or folder."""
        if isinstance(entities, pd.DataFrame):
            table = pa.Table.from_pandas(entities, preserve_index=False)
            return cls(table=table, description=f"DataFrame ({len(entities):,} rows)")
        if isinstance(entities, pa.Table):
            return cls(table=entities, description=f"Arrow table ({entities.num_rows:,} rows)")
        if isinstance(entities, str | os.PathLike):
            path = Path(entities).resolve()
            if not path.exists():
                raise InvalidInputError(f"Entity input {str(path)!r} does not exist.",
                                        hint="Pass a DataFrame, or a Parquet file or folder.")
            files = _parquet_files(path)
            if not files:
                raise InvalidInputError(f"Entity input {str(path)!r} holds no .parquet files.",
                                        hint="Pass a Parquet file, or a folder of them.")
            return cls(files=files, description=str(path))
        raise InvalidInputError(f"Entities are a {type(entities).__name__}.",
                                hint="Pass a DataFrame, or the path of a Parquet file or folder.")

    @property
    def schema(self) -> pa.Schema:
        """The input's columns (the first file's; `check_columns` holds the others to it)."""
        if self.table is not None:
            return self.table.schema
        return pq.read_schema(self.files[0])

    @property
    def num_rows(self) -> int:
        """Rows in the input, from the Parquet footers (no data is read)."""
        if self.table is not None:
            return self.table.num_rows
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def check_columns(self, columns: Sequence[str]) -> None:
        """Every file has `columns`, with the types of the first file."""
        first = self.schema
        for file in self.files[1:]:
            schema = pq.read_schema(file)
            for name in columns:
                if name not in schema.names or schema.field(name).type != first.field(name).type:
                    raise InvalidInputError(
                        f"Input file {str(file)!r} has no column {name!r} of type "
                        f"{first.field(name).type} (as in {str(self.files[0])!r}).",
                        hint="Give every input file the same columns and types.")

    def fingerprint(self) -> str:
        """What identifies this input for a resumed run: file names, sizes and times, or data."""
        digest = hashlib.sha256()
        if self.table is not None:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.table.schema) as writer:
                writer.write_table(self.table)
            digest.update(sink.getvalue())
        for file in self.files:
            stat = file.stat()
            digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def scan(self, columns: Sequence[str], batch_rows: int = 1_000_000,
             ) -> Iterator[pa.RecordBatch]:
        """Every row's `columns`, in bounded batches."""
        if self.table is not None:
            yield from self.table.select(list(columns)).to_batches(batch_rows)
            return
        for file in self.files:
            yield from pq.ParquetFile(file).iter_batches(batch_size=batch_rows,
                                                         columns=list(columns))

    def time_range(self, column: str) -> tuple[int | None, int | None, int]:
        """The smallest and largest value of a timestamp column (UTC microseconds), and how
        many values are null."""
        lows, highs, nulls = [], [], 0
        for batch in self.scan([column]):
            values = pc.cast(batch.column(0), pa.timestamp("us"), safe=False).cast(pa.int64())
            nulls += values.null_count
            bounds = pc.min_max(values)
            if bounds["min"].is_valid:
                lows.append(bounds["min"].as_py())
                highs.append(bounds["max"].as_py())
        return (min(lows) if lows else None), (max(highs) if highs else None), nulls

    def partitions(self, chunk_rows: int) -> list[Partition]:
        """The job's partitions, numbered from 0 (the same for the same input and chunk_rows)."""
        if self.table is not None:
            return [Partition(i, None, start, min(start + chunk_rows, self.table.num_rows))
                    for i, start in enumerate(range(0, self.table.num_rows, chunk_rows))]
        spans: list[tuple[str, int, int]] = []
        for file in self.files:
            spans += [(str(file), a, b) for a, b in _file_spans(file, chunk_rows)]
        return [Partition(i, file, a, b) for i, (file, a, b) in enumerate(spans)]

    def portable(self, part: Partition) -> Partition:
        """The partition with its rows attached if they live in memory (to send to a worker)."""
        if part.file is not None or self.table is None:
            return part
        return replace(part, data=_ipc(self.table.slice(part.start, part.rows)))


def read_partition(part: Partition, columns: Sequence[str], batch_rows: int,
                   ) -> Iterator[pa.RecordBatch]:
    """The rows of a (portable) partition, in batches of at most `batch_rows`."""
    if part.file is not None:
        yield from read_rows(part.file, part.start, part.stop, columns, batch_rows)
    elif part.data is not None:
        table = pa.ipc.open_stream(part.data).read_all()
        yield from table.select(list(columns)).to_batches(batch_rows)
    else:
        raise ValueError("an in-memory partition must be made portable before reading")


def _ipc(table: pa.Table) -> bytes:
    """A slice as compact bytes (pickling a slice would carry its parent's whole buffers)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _file_spans(file: Path, chunk_rows: int) -> list[tuple[int, int]]:
    """Row ranges of about chunk_rows rows that follow the row groups where they can.

    Small row groups are merged up to chunk_rows. A larger one is cut into chunk_rows pieces
    (each piece decodes the rows of its group before it), and a giant one (over
    GIANT_ROW_GROUP x chunk_rows) is one range, streamed whole, so no row is decoded twice.
    """
    meta = pq.ParquetFile(file).metadata
    spans: list[tuple[int, int]] = []
    start = position = 0  # rows from `start` to `position` are merged small groups

    def flush() -> None:
        if position > start:
            spans.append((start, position))

    for i in range(meta.num_row_groups):
        size = meta.row_group(i).num_rows
        if size > chunk_rows:
            flush()
            pieces = 1 if size > GIANT_ROW_GROUP * chunk_rows else -(-size // chunk_rows)
            step = -(-size // pieces)
            spans += [(a, min(a + step, position + size))
                      for a in range(position, position + size, step)]
            start = position + size
        elif position + size - start > chunk_rows:
            flush()
            start = position
        position += size
    flush()
    return [(a, b) for a, b in spans if b > a]


def read_rows(file: str, start: int, stop: int, columns: Sequence[str], batch_rows: int,
              ) -> Iterator[pa.RecordBatch]:
    """Rows [start, stop) of a Parquet file, reading only the row groups that hold them."""
    parquet = pq.ParquetFile(file)
    groups, first, offset = [], None, 0
    for i in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(i).num_rows
        if offset + size > start and offset < stop:
            groups.append(i)
            first = offset if first is None else first
        offset += size
    if not groups:
        return
    skip, left = start - first, stop - start  # type: ignore[operator]
    for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=groups,
                                      columns=list(columns)):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        batch = batch.slice(skip, left)
        skip, left = 0, left - batch.num_rows
        if batch.num_rows:
            yield batch
        if left <= 0:
            return
