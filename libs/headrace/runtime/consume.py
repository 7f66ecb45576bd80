"""The consume loop every service runs: poll, handle, commit what is done.

Records are handled concurrently up to a limit; the committed offset of a partition advances
only past records whose handling has finished, so a crash re-delivers everything unfinished.
A handler that raises is retried with backoff (its effects are idempotent), or set aside in the
dead-letter topic when it can never succeed (see runtime/failures.py); never skipped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from headrace.ports.log import Consumer, LogRecord
from headrace.runtime.dead_letter import DeadLetters
from headrace.runtime.failures import Disposition, classify

Handler = Callable[[LogRecord], Awaitable[None]]
log = structlog.get_logger(__name__)


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
        handler: Handler,
        *,
        name: str,
        dead_letters: DeadLetters,
        concurrency: int = 1,
        batch: int = 100,
        commit_interval_s: float = 0.2,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        max_unclassified_attempts: int = 10,
    ) -> None:
        self._consumer = consumer
        self._handler = handler
        self._name = name
        self._slots = asyncio.Semaphore(concurrency)
        self._batch = batch
        self._commit_interval_s = commit_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._dead_letters = dead_letters
        self._max_unclassified_attempts = max_unclassified_attempts
        self._progress: dict[int, _PartitionProgress] = {}
        # Each record's task and its partition, while it runs.
        self._tasks: dict[asyncio.Task[None], int] = {}
        self._committed: dict[int, int] = {}
        self._stopping = asyncio.Event()

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
                records = await self._consumer.poll(self._batch, timeout_ms=200)
                for record in records:
                    await self._slots.acquire()
                    if self._stopping.is_set():
                        self._slots.release()
                        break
                    self._progress.setdefault(record.partition, _PartitionProgress()).started(
                        record.offset
                    )
                    task = asyncio.create_task(self._handle(record))
                    self._tasks[task] = record.partition
                    task.add_done_callback(self._forget)
        finally:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer

    async def drain(self, partitions: set[int] | None = None) -> None:
        """Wait for in-flight records (of `partitions`, or all) and commit them.

        Services call this from their revocation hook, so a partition moves only after its
        records' effects are durable and committed.
        """
        # Wait for the tasks, not for the offsets: a record cancelled at shutdown stays
        # uncommitted, and its task is done all the same.
        tasks = [t for t, p in self._tasks.items() if partitions is None or p in partitions]
        if tasks:
            await asyncio.wait(tasks)
        await self._commit()
        for partition in partitions if partitions is not None else set(self._progress):
            self._progress.pop(partition, None)
            self._committed.pop(partition, None)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop taking records, give those in flight `grace_s` to finish, commit.

        Records still unfinished then are cancelled and stay uncommitted: the next owner of
        their partition handles them again.
        """
        self._stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self._commit()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def _handle(self, record: LogRecord) -> None:
        delay = self._retry_initial_s
        attempts = 0
        try:
            while True:
                try:
                    await self._handler(record)
                    break
                except Exception as err:
                    attempts += 1
                    if await self._failed(record, err, attempts, delay):
                        break
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry_max_s)
            # Only a finished record lets the commit point pass it; a cancelled one stays.
            progress = self._progress.get(record.partition)
            if progress is not None:
                progress.in_flight.discard(record.offset)
        finally:
            self._slots.release()

    async def _failed(self, record: LogRecord, err: Exception, attempts: int, delay: float) -> bool:
        """Decide about a failed attempt: True when the record was set aside (it is done)."""
        where = {
            "service": self._name,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "attempt": attempts,
        }
        disposition = classify(err)
        if disposition is Disposition.RETRY:
            # An outage: expected, retried for as long as it lasts, no traceback needed.
            log.warning(
                "dependency unavailable; retrying", error=repr(err), retry_in_s=delay, **where
            )
            return False
        if disposition is Disposition.RETRY_BOUNDED and attempts < self._max_unclassified_attempts:
            log.exception("handler failed; retrying", retry_in_s=delay, **where)
            return False
        try:
            await self._dead_letters.put(record, err)
        except Exception as dead_letter_err:
            log.warning(
                "cannot dead-letter the record yet; retrying",
                error=repr(dead_letter_err),
                retry_in_s=delay,
                **where,
            )
            return False
        log.error("record dead-lettered", reason=repr(err), **where)
        return True

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
