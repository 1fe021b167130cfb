"""Dynamic batching: requests that arrive together run together, each caller gets its own answer.

A model forward costs little more for 16 texts than for one (the matrix multiplies are wider,
not longer), so under load a server that runs requests one by one wastes most of its compute.
:class:`DynamicBatcher` queues the ITEMS of every request (one text, one question) and a loop on
the event loop cuts batches from the queue:

* the OLDEST item always goes into the next batch (nobody starves), and waits at most
  ``max_wait_ms`` for company — no wait at all when a full batch is already queued;
* the rest of the batch is filled with queued items of the same kind (same endpoint and
  options) whose token length is closest to the oldest one's, while the batch stays within
  ``max_batch_size`` items and ``max_batch_tokens`` padded tokens (items × longest): grouping by
  length keeps padding, i.e. wasted work, small;
* the batch runs in a worker thread (``run_in_executor``) so the event loop keeps accepting
  requests; while it runs the queue fills, so the next batch is larger exactly when the
  server is busy;
* the queue is bounded (``max_queue`` items): beyond it :meth:`DynamicBatcher.submit` raises
  :class:`Overloaded` with a retry estimate, and the server answers 503 instead of letting
  latency grow without bound.

If a batch fails with a :class:`~bertkit.errors.BertkitError` (one caller's text the model
cannot take), its items are rerun one by one, so only the faulty request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from bertkit.errors import BertkitError
from bertkit.server.limits import BatchLimits

logger = logging.getLogger("bertkit.server")

RunBatch = Callable[[Hashable, list[Any]], list[Any]]
"""``run(key, payloads) → one result per payload``, called in the worker thread."""


class Overloaded(Exception):
    """The queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"server overloaded; retry after {retry_after} s")
        self.retry_after = retry_after


class ItemError(Exception):
    """Item ``index`` of a request could not be processed (``error`` says why)."""

    def __init__(self, index: int, error: BertkitError):
        super().__init__(str(error))
        self.index, self.error = index, error


@dataclass
class _Job:
    """One request: its results fill in as its items' batches finish."""

    future: asyncio.Future[list[Any]]
    results: list[Any]
    remaining: int


@dataclass
class _Item:
    key: Hashable
    payload: Any
    cost: int
    job: _Job
    index: int
    arrival: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the batcher reports per batch (for ``/metrics``)."""

    size: int
    tokens: int
    seconds: float


class DynamicBatcher:
    """Queue items, run them in batches on ``executor``; see the module docstring."""

    def __init__(self, run: RunBatch, executor: Executor, limits: BatchLimits | None = None,
                 *, on_batch: Callable[[BatchStats], None] | None = None):
        self.run = run
        self.executor = executor
        self.limits = (limits or BatchLimits()).validate()
        self.on_batch = on_batch
        self._pending: list[_Item] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._seconds_per_item = 0.01  # running estimate, for Retry-After

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def drain_seconds(self) -> float:
        """Estimated seconds until the items queued now have run (the ``Retry-After``)."""
        return len(self._pending) * self._seconds_per_item

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop; queued requests fail as overloaded (the server is going away)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for item in self._pending:
            if not item.job.future.done():
                item.job.future.set_exception(Overloaded(1))
        self._pending.clear()

    async def submit(self, key: Hashable, payloads: Sequence[Any],
                     costs: Sequence[int]) -> list[Any]:
        """Queue a request's items (``key``: which items may share a batch; ``costs``: token
        counts) and wait for all their results, in order.

        Raises :class:`Overloaded` when the queue cannot take them, :class:`ItemError` for the
        first item the model refused.
        """
        if self._task is None:
            raise RuntimeError("the batcher is not running (call start() inside the event loop)")
        if len(self._pending) + len(payloads) > self.limits.max_queue:
            raise Overloaded(max(1, math.ceil(self.drain_seconds)))
        if not payloads:
            return []
        job = _Job(asyncio.get_running_loop().create_future(), [None] * len(payloads),
                   len(payloads))
        self._pending += [_Item(key, payload, max(1, int(cost)), job, index)
                          for index, (payload, cost) in enumerate(zip(payloads, costs,
                                                                      strict=True))]
        self._arrived.set()
        return await job.future

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            first = self._pending[0]
            deadline = first.arrival + self.limits.max_wait_ms / 1000
            while not self._full(first.key) and (delay := deadline - time.monotonic()) > 0:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), delay)
                except TimeoutError:
                    break
            batch = self._take()
            try:
                await self._execute(batch)
            except Exception:  # a bug in a run function: fail the batch, keep serving
                logger.exception("batch of %d items failed", len(batch))
                for item in batch:
                    if not item.job.future.done():
                        item.job.future.set_exception(RuntimeError("internal error"))

    def _full(self, key: Hashable) -> bool:
        same = [item.cost for item in self._pending if item.key == key]
        return (len(same) >= self.limits.max_batch_size
                or max(same) * len(same) >= self.limits.max_batch_tokens)

    def _take(self) -> list[_Item]:
        """The oldest item plus the same-kind items closest to it in length, within limits."""
        first = self._pending[0]
        others = sorted((item for item in self._pending[1:]
                         if item.key == first.key and not item.job.future.done()),
                        key=lambda item: (abs(item.cost - first.cost), item.arrival))
        chosen, longest = [first], first.cost
        for item in others:
            if len(chosen) >= self.limits.max_batch_size:
                break
            wider = max(longest, item.cost)
            if wider * (len(chosen) + 1) > self.limits.max_batch_tokens:
                continue
            chosen.append(item)
            longest = wider
        taken = {id(item) for item in chosen}
        self._pending = [item for item in self._pending
                         if id(item) not in taken and not item.job.future.done()]
        return [item for item in chosen if not item.job.future.done()]

    async def _execute(self, batch: list[_Item]) -> None:
        if not batch:
            return
        key = batch[0].key
        started = time.perf_counter()
        outcomes = await asyncio.get_running_loop().run_in_executor(
            self.executor, self._run_isolating, key, [item.payload for item in batch])
        seconds = time.perf_counter() - started
        self._seconds_per_item = 0.8 * self._seconds_per_item + 0.2 * seconds / len(batch)
        if self.on_batch is not None:
            self.on_batch(BatchStats(len(batch), max(i.cost for i in batch) * len(batch),
                                     seconds))
        for item, outcome in zip(batch, outcomes, strict=True):
            job = item.job
            if job.future.done():  # cancelled by its client, or an earlier item failed
                continue
            if isinstance(outcome, BertkitError):
                job.future.set_exception(ItemError(item.index, outcome))
                continue
            job.results[item.index] = outcome
            job.remaining -= 1
            if job.remaining == 0:
                job.future.set_result(job.results)

    def _run_isolating(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        """Run a batch (worker thread); on a user error, rerun item by item to find whose."""
        try:
            results = self.run(key, payloads)
        except BertkitError as err:
            if len(payloads) == 1:
                return [err]
            return [self._run_isolating(key, [payload])[0] for payload in payloads]
        if len(results) != len(payloads):
            raise RuntimeError(f"run returned {len(results)} results for {len(payloads)} items")
        return list(results)
