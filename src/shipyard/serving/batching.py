"""Micro-batching: concurrent requests to one model gathered into one call in a worker thread.

Requests queue in a bounded deque; one task per batcher takes up to `max_batch_size` of them
and runs `run(items)` in the batcher's own thread, so the event loop keeps accepting
requests (and they pile up into the next batch) while the model works. When the last batch
held more than one request (there is concurrency), the task also waits up to `max_wait` for
the batch to fill; a lone client never waits. A full queue refuses at once (503).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from shipyard.core.errors import ShipyardError

logger = logging.getLogger("shipyard.serving")
Item = TypeVar("Item")
Result = TypeVar("Result")
BatchRun = Callable[[Sequence[Item]], Sequence["Result | BaseException"]]


class OverloadedError(ShipyardError):
    """Too many requests are waiting for this model; retry after `retry_after_seconds`."""

    http_status = 503

    def __init__(self, message: str, *, hint: str | None = None,
                 retry_after_seconds: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_seconds = retry_after_seconds


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Worker:
    """One thread running one call at a time for the event loop (a lean run_in_executor).

    The call goes over a SimpleQueue and its result comes back with one call_soon_threadsafe:
    none of concurrent.futures' locks, conditions and chained futures on either side, which
    cost more than a single-row model call.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, function: Callable[[Any], Any], argument: Any) -> asyncio.Future[Any]:
        """A future of `function(argument)`, called in the worker's thread."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put((loop, future, function, argument))
        return future

    def shutdown(self) -> None:
        """Let the thread finish its current call and exit."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, function, argument = job
            try:
                result, error = function(argument), None
            except BaseException as exc:  # handed to the awaiting task, as an executor does
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop closed meanwhile: nobody waits any more
                return
            del job, future, result, error


class Batcher(Generic[Item, Result]):
    """Gathers submitted items into batches for `run`, one batch at a time, in a thread."""

    def __init__(self, run: BatchRun, *, name: str, max_batch_size: int = 32,
                 max_wait_seconds: float = 0.001, max_queue: int = 256,
                 on_batch: Callable[[int], object] | None = None, linger: bool = False) -> None:
        self.run = run
        self.linger = linger  # always wait max_wait for a full batch (background work)
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_wait_seconds = max_wait_seconds
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._pending: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._wakeup = asyncio.Event()
        self._worker = Worker(f"shipyard-model-{name}")
        self._task: asyncio.Task[None] | None = None
        self._last_batch_size = 0
        self._busy = False

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._pending)

    @property
    def is_busy(self) -> bool:
        """Whether a batch is running or requests are waiting."""
        return self._busy or bool(self._pending)

    def start(self) -> None:
        """Start the batching task on the running loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(),
                                                                name=f"batcher-{self.name}")

    async def submit(self, item: Item) -> Result:
        """The result of `item`, computed in some batch; OverloadedError if the queue is full."""
        if len(self._pending) >= self.max_queue:
            raise OverloadedError(f"Model {self.name!r} has {len(self._pending)} requests "
                                  "waiting, its limit.",
                                  hint="Retry after the Retry-After delay, or add workers.")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wakeup.set()
        return await future  # a caller's timeout cancels the future: the batch skips it

    async def stop(self) -> None:
        """Finish the queued and running batches, then stop the task and the thread."""
        while self._pending or self._busy:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._worker.shutdown()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                if (self.linger or self._last_batch_size > 1) and self.max_wait_seconds > 0:
                    await self._fill(loop)
                batch = self._take()
                if batch:
                    await self._run(loop, batch)

    async def _fill(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until a full batch is queued or max_wait has passed."""
        deadline = loop.time() + self.max_wait_seconds
        while len(self._pending) < self.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        while self._pending and len(batch) < self.max_batch_size:
            item, future = self._pending.popleft()
            if not future.done():  # timed out or disconnected callers are skipped
                batch.append((item, future))
        return batch

    async def _run(self, loop: asyncio.AbstractEventLoop,
                   batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self._busy = True
        self._last_batch_size = len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch))
        try:
            results = await self._worker.run(self.run, [item for item, _ in batch])
        except Exception as exc:  # the whole batch failed: only its callers see it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self._busy = False
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
