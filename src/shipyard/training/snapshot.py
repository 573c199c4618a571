"""Deterministic Parquet snapshots of frames, and content hashes of frames.

Every writer option is fixed (rather than left to pyarrow's defaults, which change between
releases), so the same frame gives the same bytes, hence the same sha256, with the same
library versions. The footer records the pyarrow and pandas versions, so other versions may
give other bytes for the same rows.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from shipyard.core.hashing import canonical_json

if TYPE_CHECKING:
    import pandas as pd

# Fixed writer options: changing any of these changes every dataset's content hash.
WRITER_OPTIONS = {
    "compression": "zstd", "compression_level": 3, "use_dictionary": True,
    "write_statistics": True, "version": "2.6", "data_page_size": 1 << 20,
    "data_page_version": "1.0", "row_group_size": 1 << 20, "write_page_index": False,
    "store_schema": True,
}


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The frame (its index dropped) as Parquet bytes, identical for identical frames."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **WRITER_OPTIONS)  # type: ignore[arg-type]
    return bytes(sink.getvalue().to_pybytes())


def read_parquet_bytes(data: bytes) -> pd.DataFrame:
    """A frame from `parquet_bytes` output (dtypes restored from the stored schema)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data)).to_pandas()


def frame_sha256(frame: pd.DataFrame) -> str:
    """A content hash of a frame's columns, dtypes and values (not its index)."""
    import pandas as pd

    digest = hashlib.sha256(canonical_json(
        [[str(c), str(frame[c].dtype)] for c in frame.columns]).encode())
    if len(frame.columns):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()

