"""Batch prediction (a local process-pool engine and Apache Spark) and scheduled jobs."""

from shipyard.batch.api import Batch, BatchResult
from shipyard.batch.engines import ENGINES, BatchEngine, EngineReport
from shipyard.batch.jobs import JobDefinition
from shipyard.batch.leases import Lease, Leases
from shipyard.batch.runs import BatchRun
from shipyard.batch.scheduler import Outcome, Scheduler

__all__ = ["ENGINES", "Batch", "BatchEngine", "BatchResult", "BatchRun", "EngineReport",
           "JobDefinition", "Lease", "Leases", "Outcome", "Scheduler"]
