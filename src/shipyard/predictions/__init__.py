"""The prediction log: durable, non-blocking append of every prediction; read back as frames."""

from shipyard.predictions.labels import LabelLog, join_labels
from shipyard.predictions.log import PredictionLog
from shipyard.predictions.records import PredictionBatch
from shipyard.predictions.writer import PredictionWriter, WriterStats

__all__ = ["LabelLog", "PredictionBatch", "PredictionLog", "PredictionWriter", "WriterStats", "join_labels"]
