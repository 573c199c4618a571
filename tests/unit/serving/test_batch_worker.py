"""The batcher's worker thread: results and errors back to the loop, one call at a time."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from shipyard.serving.batching import Worker


def test_calls_run_in_the_named_thread_and_their_results_come_back() -> None:
    worker = Worker("shipyard-model-test")

    async def main() -> list[tuple[int, str]]:
        def where(x: int) -> tuple[int, str]:
            return 2 * x, threading.current_thread().name

        return [await worker.run(where, i) for i in range(3)]

    results = asyncio.run(main())
    worker.shutdown()
    assert [r for r, _ in results] == [0, 2, 4]
    assert {name for _, name in results} == {"shipyard-model-test"}


def test_an_exception_reaches_the_awaiting_task() -> None:
    worker = Worker("w")

    def fail(_: object) -> None:
        raise ValueError("model broke")

    async def main() -> None:
        await worker.run(fail, None)

    with pytest.raises(ValueError, match="model broke"):
        asyncio.run(main())
    worker.shutdown()


def test_a_cancelled_caller_does_not_break_the_next_call() -> None:
    worker = Worker("w")
    release = threading.Event()

    async def main() -> int:
        slow = worker.run(lambda _: release.wait(5), None)
        slow.cancel()  # e.g. the batcher stopped while the call ran
        release.set()
        return await worker.run(lambda x: x + 1, 41)  # queued behind the slow one

    started = time.perf_counter()
    assert asyncio.run(main()) == 42
    assert time.perf_counter() - started < 2
    worker.shutdown()


def test_shutdown_ends_the_thread() -> None:
    worker = Worker("shipyard-model-ending")

    async def main() -> None:
        await worker.run(lambda _: None, None)

    asyncio.run(main())
    thread = worker._thread
    assert thread is not None and thread.is_alive()
    worker.shutdown()
    thread.join(2)
    assert not thread.is_alive()
