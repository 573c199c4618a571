"""Outcomes logged per unit or per request (labels, conversions, revenue): Parquet files.

`<root>/<experiment>/<time>-<random>.parquet`, each written to a temporary name and renamed,
so a reader never sees half a file and a crash loses nothing already returned.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pandas as pd

from shipyard.core.errors import InvalidInputError


class OutcomeLog:
    """The outcomes of every experiment of a project, under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def append(self, experiment: str, frame: pd.DataFrame, *, unit: str) -> int:
        """Store outcome rows (each names its unit or its request_id); returns the row count."""
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            raise InvalidInputError("Outcomes must be a non-empty DataFrame.",
                                    hint=f"One row per unit ({unit!r}) or request (request_id) "
                                         "with one column per metric.")
        if unit not in frame and "request_id" not in frame:
            raise InvalidInputError(f"The outcomes have neither the unit column {unit!r} nor "
                                    "request_id.", hint="Add one, so each outcome finds its unit.")
        folder = self.root / experiment
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        tmp = folder / f"{stem}.tmp"
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb") as file:
            os.fsync(file.fileno())
        os.replace(tmp, folder / f"{stem}.parquet")
        return len(frame)

    def read(self, experiment: str) -> pd.DataFrame | None:
        """Every outcome row of an experiment, oldest first (None: none logged)."""
        files = sorted((self.root / experiment).glob("*.parquet"))
        if not files:
            return None
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
