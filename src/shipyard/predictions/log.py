"""`project.predictions`: the prediction log of a project (write from servers, read anywhere)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from shipyard.predictions.compaction import BackgroundCompactor, compact
from shipyard.predictions.labels import LabelLog, join_labels
from shipyard.predictions.reader import read_predictions
from shipyard.predictions.writer import PredictionWriter


class PredictionLog:
    """Every logged prediction of a project, under one folder."""

    def __init__(self, root: Path, *, flush_interval_seconds: float = 1.0,
                 max_queue_rows: int = 100_000, segment_max_bytes: int = 64 << 20,
                 segment_max_age_seconds: float = 300.0) -> None:
        self.root = root
        self.flush_interval_seconds = flush_interval_seconds
        self.max_queue_rows = max_queue_rows
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_age_seconds = segment_max_age_seconds

    def open_writer(self) -> PredictionWriter:
        """Start a writer (one per process); closed segments are compacted in the background.

        Segments left by a process that died are compacted now, in the background too.
        """
        compactor = BackgroundCompactor(self.root)
        writer = PredictionWriter(self.root / "segments",
                                  flush_interval_seconds=self.flush_interval_seconds,
                                  max_queue_rows=self.max_queue_rows,
                                  segment_max_bytes=self.segment_max_bytes,
                                  segment_max_age_seconds=self.segment_max_age_seconds,
                                  on_roll=compactor.request).start()
        compactor.request()
        return writer

    def read(self, model: str, start: datetime | str | None = None,
             end: datetime | str | None = None) -> pd.DataFrame:
        """Predictions of `model` with start <= timestamp < end, oldest first (see reader)."""
        return read_predictions(self.root, model, start, end)

    def compact(self) -> int:
        """Turn closed segments into Parquet now; returns how many were compacted."""
        return compact(self.root)

    @property
    def labels(self) -> LabelLog:
        """The label log beside the predictions (`<root>/labels`)."""
        return LabelLog(self.root / "labels")

    def read_labeled(self, model: str, start: datetime | str | None = None,
                     end: datetime | str | None = None) -> pd.DataFrame:
        """`read(...)` plus `label` and `label_logged_at` (the newest label of each row)."""
        return join_labels(self.read(model, start, end), self.labels.read())
