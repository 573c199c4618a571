"""Experiment tracking: runs with params, metrics, tags and artifacts; search and compare."""

from shipyard.tracking.git import GitState, git_state
from shipyard.tracking.records import Experiment, Metric, RunInfo
from shipyard.tracking.run import Run
from shipyard.tracking.store import Tracking

__all__ = ["Experiment", "GitState", "Metric", "Run", "RunInfo", "Tracking", "git_state"]
