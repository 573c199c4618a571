"""Micro-batching: gathering, routing results back, failure isolation, overload, timeouts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from shipyard.serving.batching import Batcher, OverloadedError


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_concurrent_items_share_batches_and_get_their_own_results() -> None:
    sizes: list[int] = []

    def double(items: Sequence[int]) -> list[int]:
        time.sleep(0.01)  # the model is busy: the next items pile up
        return [2 * i for i in items]

    async def main() -> list[int]:
        batcher: Batcher[int, int] = Batcher(double, name="m", max_batch_size=8,
                                             max_wait_seconds=0.002, on_batch=sizes.append)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
        await batcher.stop()
        return list(results)

    assert _run(main()) == [2 * i for i in range(50)]
    assert max(sizes) == 8 and sum(sizes) == 50 and len(sizes) < 50


def test_a_failing_batch_fails_only_its_callers() -> None:
    def run(items: Sequence[int]) -> list[int]:
        if -1 in items:
            raise RuntimeError("model broke")
        return list(items)

    async def main() -> tuple[object, object, list[object]]:
        batcher: Batcher[int, int] = Batcher(run, name="m", max_batch_size=1)
        batcher.start()
        bad, good = await asyncio.gather(batcher.submit(-1), batcher.submit(3),
                                         return_exceptions=True)
        per_item: Batcher[int, object] = Batcher(
            lambda items: [ValueError(i) if i < 0 else i for i in items], name="p",
            max_batch_size=4)
        per_item.start()
        mixed = await asyncio.gather(*(per_item.submit(i) for i in (1, -2, 3)),
                                     return_exceptions=True)
        await batcher.stop()
        await per_item.stop()
        return bad, good, list(mixed)

    bad, good, mixed = _run(main())
    assert isinstance(bad, RuntimeError) and good == 3
    assert mixed[0] == 1 and isinstance(mixed[1], ValueError) and mixed[2] == 3


def test_a_full_queue_refuses_at_once() -> None:
    release = threading.Event()

    def blocked(items: Sequence[int]) -> list[int]:
        release.wait(5)
        return list(items)

    async def main() -> list[object]:
        batcher: Batcher[int, int] = Batcher(blocked, name="m", max_batch_size=1, max_queue=2)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)  # the first item is in the model; two may wait
        waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        started = time.perf_counter()
        with pytest.raises(OverloadedError) as refused:
            await batcher.submit(3)
        assert time.perf_counter() - started < 0.05
        assert refused.value.http_status == 503 and refused.value.retry_after_seconds >= 1
        release.set()
        results = await asyncio.gather(first, *waiting)
        await batcher.stop()
        return list(results)

    assert _run(main()) == [0, 1, 2]


def test_a_timed_out_item_is_skipped_by_the_batch() -> None:
    seen: list[int] = []
    release = threading.Event()

    def run(items: Sequence[int]) -> list[int]:
        seen.extend(items)
        release.wait(5)
        return list(items)

    async def main() -> None:
        batcher: Batcher[int, int] = Batcher(run, name="m", max_batch_size=1)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await batcher.submit(1)
        release.set()
        assert await first == 0
        assert await batcher.submit(2) == 2
        await batcher.stop()

    _run(main())
    assert seen == [0, 2]
