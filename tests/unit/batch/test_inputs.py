"""Partitions cover every input row exactly once, follow row groups, and are stable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.batch.inputs import EntityInput, read_partition
from shipyard.core.errors import InvalidInputError


def ids_read(data: EntityInput, chunk_rows: int) -> np.ndarray:
    parts = data.partitions(chunk_rows)
    assert [p.index for p in parts] == list(range(len(parts)))
    return np.concatenate([b.column(0).to_numpy() for p in parts
                           for b in read_partition(data.portable(p), ["id"], 700)])


@pytest.mark.parametrize(("row_group", "chunk"), [(100, 1_000), (5_000, 1_000), (1_000, 1_000),
                                                  (40_000, 1_000), (2_500, 1_000)])
def test_parquet_partitions_cover_each_row_once(tmp_path: Path, row_group: int,
                                                chunk: int) -> None:
    for i, size in enumerate((17_000, 3_001)):
        pq.write_table(pa.table({"id": np.arange(size) + i * 100_000}),
                       tmp_path / f"part{i}.parquet", row_group_size=row_group)
    data = EntityInput.of(tmp_path)
    got = ids_read(data, chunk)
    assert np.array_equal(got, np.r_[np.arange(17_000), np.arange(3_001) + 100_000])
    assert data.num_rows == 20_001
    sizes = [p.rows for p in data.partitions(chunk)]
    assert max(sizes) <= max(chunk, row_group) and data.partitions(chunk) == data.partitions(chunk)


def test_small_row_groups_are_merged_and_big_ones_cut_along_them(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": np.arange(10_000)}), tmp_path / "a.parquet",
                   row_group_size=1_000)
    assert [(p.start, p.stop) for p in EntityInput.of(tmp_path).partitions(2_000)] == [
        (a, a + 2_000) for a in range(0, 10_000, 2_000)]
    pq.write_table(pa.table({"id": np.arange(10_000)}), tmp_path / "a.parquet")
    assert len(EntityInput.of(tmp_path).partitions(2_500)) == 4


def test_a_frame_is_partitioned_in_memory() -> None:
    frame = pd.DataFrame({"id": np.arange(2_345)})
    data = EntityInput.of(frame)
    assert np.array_equal(ids_read(data, 1_000), np.arange(2_345))
    assert data.fingerprint() == EntityInput.of(frame.copy()).fingerprint()
    assert data.fingerprint() != EntityInput.of(frame.iloc[::-1]).fingerprint()


def test_hidden_files_are_not_input(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1]}), tmp_path / "a.parquet")
    (tmp_path / "_tmp").mkdir()
    pq.write_table(pa.table({"id": [2]}), tmp_path / "_tmp" / "b.parquet")
    pq.write_table(pa.table({"id": [3]}), tmp_path / ".c.parquet")
    assert EntityInput.of(tmp_path).num_rows == 1


@pytest.mark.parametrize(("given", "message"), [
    ("missing.parquet", "does not exist"), (42, "Entities are a int")])
def test_bad_inputs_are_named(tmp_path: Path, given: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        EntityInput.of(tmp_path / given if isinstance(given, str) else given)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="holds no .parquet files"):
        EntityInput.of(tmp_path)


def test_files_must_agree_on_needed_columns(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1], "x": [1.0]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": ["1"], "x": [1.0]}), tmp_path / "b.parquet")
    data = EntityInput.of(tmp_path)
    data.check_columns(["x"])
    with pytest.raises(InvalidInputError, match="no column 'id' of type int64"):
        data.check_columns(["id"])


def test_time_range_and_missing_times() -> None:
    times = pd.to_datetime(["2026-01-02", None, "2026-01-01"], utc=True)
    low, high, nulls = EntityInput.of(pd.DataFrame({"t": times})).time_range("t")
    assert (low, high, nulls) == (int(times[2].value // 1_000), int(times[0].value // 1_000), 1)
