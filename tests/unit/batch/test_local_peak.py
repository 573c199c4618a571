"""The local engine's memory figure: processes that held memory at once, each counted once."""

from __future__ import annotations

import os

from shipyard.batch import _worker
from shipyard.batch.local import concurrent_peak


def test_a_replaced_worker_is_not_added_to_its_successor() -> None:
    assert concurrent_peak([300, 250, 260], workers=2) == 560
    assert concurrent_peak([300], workers=2) == 300


def test_peak_rss_reads_other_processes_and_gone_ones_give_zero() -> None:
    mine = _worker.peak_rss_bytes()
    assert _worker.peak_rss_bytes(os.getpid()) >= mine > 0
    assert _worker.peak_rss_bytes(2**22 + 12345) == 0  # above Linux's pid_max: never a process
