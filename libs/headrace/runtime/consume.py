"""The consume loop every service runs: poll, handle, commit what is done.

Records are handled in one of two orders, chosen per loop:
- Concurrently: up to `concurrency` handler calls at once, one record at a time or, for a batch
  handler, in batches, in any order.
- In partition order: each partition's records one handler call at a time, in offset order, and
  different partitions at once, so a slow record holds up only the records behind it.
Either way the committed offset of a partition advances only past records whose handling has
finished, so a crash re-delivers everything unfinished; a handler that raises is retried or its
record set aside as runtime/settle.py says, never skipped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

import structlog

from headrace.core.doubling import DoublingDelay
from headrace.ports.log import BatchHandler, Consumer, Handler, LogRecord
from headrace.runtime.dead_letter import DeadLetters
from headrace.runtime.failures import Disposition, classify
from headrace.runtime.settle import Settler, one_at_a_time

log = structlog.get_logger(__name__)

# In partition order, how many records polled and not yet finished a loop holds before it polls
# again: its memory bound. The consumer port cannot pause one partition, so a partition whose
# backlog behind a slow record reaches this holds up the polling of the others.
DEFAULT_MAX_HELD = 1000


class _PartitionProgress:
    """Offsets in flight, so the commit point is the lowest unfinished one."""

    def __init__(self) -> None:
        self.in_flight: set[int] = set()
        self.next_offset = -1

    def started(self, offset: int) -> None:
        self.in_flight.add(offset)
        self.next_offset = max(self.next_offset, offset + 1)

    def commit_point(self) -> int | None:
        if self.next_offset < 0:
            return None
        return min(self.in_flight) if self.in_flight else self.next_offset


class ConsumeLoop:
    def __init__(
        self,
        consumer: Consumer,
        handler: Handler | None = None,
        *,
        name: str,
        dead_letters: DeadLetters,
        batch_handler: BatchHandler | None = None,
        batch_size: int = 1,
        concurrency: int = 1,
        in_partition_order: bool = False,
        max_held: int = DEFAULT_MAX_HELD,
        poll_size: int = 100,
        commit_interval_s: float = 0.2,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        max_unclassified_attempts: int = 10,
    ) -> None:
        """Give `handler` (one record at a time) or `batch_handler` (up to `batch_size` records
        of one poll at a time); `concurrency` counts handler calls in flight.
        `in_partition_order`: at most one call per partition at a time, its records in offset
        order (a batch holds records of one partition), and at most `max_held` records polled
        and unfinished."""
        if (handler is None) == (batch_handler is None):
            raise ValueError("give either a handler or a batch_handler")
        self._consumer = consumer
        whole: BatchHandler
        if batch_handler is not None:
            whole, self._batch_size = batch_handler, batch_size
        elif handler is not None:
            whole, self._batch_size = one_at_a_time(handler), 1
        self._settler = Settler(
            whole,
            self._finished,
            name=name,
            dead_letters=dead_letters,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
            max_unclassified_attempts=max_unclassified_attempts,
        )
        self._name = name
        self._slots = asyncio.Semaphore(concurrency)
        self._in_partition_order = in_partition_order
        self._max_held = max_held
        self._poll_size = max(poll_size, self._batch_size)
        self._commit_interval_s = commit_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._progress: dict[int, _PartitionProgress] = {}
        # Each handler call's task (or, in partition order, each partition's worker) and the
        # partitions of its records, while it runs.
        self._tasks: dict[asyncio.Task[None], set[int]] = {}
        self._committed: dict[int, int] = {}
        self._stopping = asyncio.Event()
        # In partition order: each partition's records waiting their turn, its worker while it
        # has any, how many records are held, and a signal when that count drops.
        self._queues: dict[int, deque[LogRecord]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._held = 0
        self._room = asyncio.Event()

    @property
    def consumer(self) -> Consumer:
        return self._consumer

    @property
    def name(self) -> str:
        return self._name

    async def run(self) -> None:
        committer = asyncio.create_task(self._commit_periodically())
        try:
            while not self._stopping.is_set():
                records = await self._poll()
                if self._in_partition_order:
                    await self._queue(records)
                else:
                    await self._dispatch(records)
        finally:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer

    async def _poll(self) -> list[LogRecord]:
        """The next records, polling again after a failure for as long as it lasts: a poll
        runs the group's hooks (an executor takes its partitions' epochs from Cassandra there),
        and a member that stopped polling would hold its group's rebalance for good."""
        backoff = DoublingDelay(self._retry_initial_s, self._retry_max_s)
        while True:
            try:
                return await self._consumer.poll(self._poll_size, timeout_ms=200)
            except Exception as err:
                if classify(err) is Disposition.RETRY:
                    log.warning(
                        "poll failed; polling again",
                        loop=self._name,
                        error=repr(err),
                        retry_in_s=backoff.delay_s,
                    )
                else:
                    log.exception("poll failed; polling again", loop=self._name)
                if self._stopping.is_set():
                    return []
                await backoff.sleep()

    # --- concurrently -------------------------------------------------------------------------

    async def _dispatch(self, records: list[LogRecord]) -> None:
        """Start a handler call per record (or batch) as slots free up."""
        for start in range(0, len(records), self._batch_size):
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                return
            unit = records[start : start + self._batch_size]
            for record in unit:
                self._started(record)
            self._track(asyncio.create_task(self._handle(unit)), {r.partition for r in unit})

    async def _handle(self, records: Sequence[LogRecord]) -> None:
        try:
            await self._settler.settle(records)
        finally:
            self._slots.release()

    # --- in partition order -------------------------------------------------------------------

    async def _queue(self, records: list[LogRecord]) -> None:
        """Queue each record behind its partition's, start the partitions' workers, and wait
        for room before the next poll."""
        if self._stopping.is_set():
            return
        for record in records:
            self._started(record)
            self._queues.setdefault(record.partition, deque()).append(record)
        self._held += len(records)
        for partition in {record.partition for record in records}:
            if partition not in self._workers:
                queue = self._queues[partition]
                worker = asyncio.create_task(self._work_through(partition, queue))
                self._workers[partition] = worker
                self._track(worker, {partition})
        while self._held >= self._max_held and not self._stopping.is_set():
            self._room.clear()
            await self._room.wait()

    async def _work_through(self, partition: int, queue: deque[LogRecord]) -> None:
        """Handle the partition's queued records in order, one call at a time, until none is
        left (or the loop stops, or the partition is drained)."""
        try:
            while queue and not self._stopping.is_set():
                unit = [queue.popleft() for _ in range(min(self._batch_size, len(queue)))]
                async with self._slots:
                    await self._settler.settle(unit)
                self._let_go(len(unit))
        finally:
            if self._workers.get(partition) is asyncio.current_task():
                del self._workers[partition]

    def _let_go(self, count: int) -> None:
        self._held -= count
        self._room.set()

    # --- progress, revocation, stop -----------------------------------------------------------

    def _started(self, record: LogRecord) -> None:
        self._progress.setdefault(record.partition, _PartitionProgress()).started(record.offset)

    def _finished(self, record: LogRecord) -> None:
        progress = self._progress.get(record.partition)
        if progress is not None:
            progress.in_flight.discard(record.offset)

    def _track(self, task: asyncio.Task[None], partitions: set[int]) -> None:
        self._tasks[task] = partitions
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def drain(self, partitions: set[int] | None = None) -> None:
        """Wait for in-flight records (of `partitions`, or all) and commit them.

        Services call this from their revocation hook, so a partition moves only after its
        records' effects are durable and committed. Records still queued in partition order
        are let go unhandled: the commit point stays before them, so the partition's next owner
        handles them.
        """
        for partition in partitions if partitions is not None else list(self._queues):
            queued = self._queues.pop(partition, None)
            if queued:
                self._let_go(len(queued))
                queued.clear()  # its worker stops after the record in hand
        # Wait for the tasks, not for the offsets: a record cancelled at shutdown stays
        # uncommitted, and its task is done all the same.
        tasks = [t for t, p in self._tasks.items() if partitions is None or p & partitions]
        if tasks:
            await asyncio.wait(tasks)
        await self._commit()
        for partition in partitions if partitions is not None else set(self._progress):
            self._progress.pop(partition, None)
            self._committed.pop(partition, None)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop taking records, give those in flight `grace_s` to finish, commit.

        Records still unfinished then are cancelled and stay uncommitted, as do records queued
        in partition order: the next owner of their partition handles them again.
        """
        self._stopping.set()
        self._room.set()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self._commit()

    # --- committing ---------------------------------------------------------------------------

    async def _commit(self) -> None:
        offsets = {}
        for partition, progress in self._progress.items():
            point = progress.commit_point()
            if point is not None and point > self._committed.get(partition, -1):
                offsets[partition] = point
        if offsets:
            await self._consumer.commit(offsets)
            self._committed.update(offsets)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._commit_interval_s)
            try:
                await self._commit()
            except Exception:
                log.exception("commit failed; will retry", service=self._name)
