"""Training: point-in-time datasets with lineage, time splits, and fit -> track -> register."""

from shipyard.training.api import Training
from shipyard.training.datasets import TrainingDataset
from shipyard.training.fit import FitResult
from shipyard.training.split import SplitSpec, TimeSplit, split_by_time

__all__ = ["FitResult", "SplitSpec", "TimeSplit", "Training", "TrainingDataset",
           "split_by_time"]
