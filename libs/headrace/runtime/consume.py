"""The consume loop every service runs: poll, handle, commit what is done.

Records are handled concurrently up to a limit, one at a time or, for a batch handler, in
batches; the committed offset of a partition advances only past records whose handling has
finished, so a crash re-delivers everything unfinished. A handler that raises is retried with
backoff (its effects are idempotent), or set aside in the dead-letter topic when it can never
succeed (see runtime/failures.py); never skipped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import structlog

from headrace.core.doubling import DoublingDelay
from headrace.core.errors import InputError
from headrace.ports.log import BatchHandler, Consumer, Handler, LogRecord
from headrace.runtime.dead_letter import DeadLetters
from headrace.runtime.failures import Disposition, classify

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
        handler: Handler | None = None,
        *,
        name: str,
        dead_letters: DeadLetters,
        batch_handler: BatchHandler | None = None,
        batch_size: int = 1,
        concurrency: int = 1,
        poll_size: int = 100,
        commit_interval_s: float = 0.2,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        max_unclassified_attempts: int = 10,
    ) -> None:
        """Give `handler` (one record at a time) or `batch_handler` (up to `batch_size` records
        of one poll at a time); `concurrency` counts handler calls in flight."""
        if (handler is None) == (batch_handler is None):
            raise ValueError("give either a handler or a batch_handler")
        self._consumer = consumer
        self._handler: BatchHandler
        if batch_handler is not None:
            self._handler, self._batch_size = batch_handler, batch_size
        elif handler is not None:
            self._handler, self._batch_size = _one_at_a_time(handler), 1
        self._name = name
        self._slots = asyncio.Semaphore(concurrency)
        self._poll_size = max(poll_size, self._batch_size)
        self._commit_interval_s = commit_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._dead_letters = dead_letters
        self._max_unclassified_attempts = max_unclassified_attempts
        self._progress: dict[int, _PartitionProgress] = {}
        # Each handler call's task and its records' partitions, while it runs.
        self._tasks: dict[asyncio.Task[None], set[int]] = {}
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
                records = await self._poll()
                for start in range(0, len(records), self._batch_size):
                    await self._slots.acquire()
                    if self._stopping.is_set():
                        self._slots.release()
                        break
                    unit = records[start : start + self._batch_size]
                    for record in unit:
                        self._progress.setdefault(record.partition, _PartitionProgress()).started(
                            record.offset
                        )
                    task = asyncio.create_task(self._handle(unit))
                    self._tasks[task] = {record.partition for record in unit}
                    task.add_done_callback(self._forget)
        finally:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer

    async def _poll(self) -> list[LogRecord]:
        """The next records, polling again after a failure for as long as it lasts: a poll
        runs the group's hooks (an executor takes its partitions' epochs from Cassandra there),
        and a member that stopped polling would hold its group's rebalance for good."""
        backoff = self._backoff()
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

    async def drain(self, partitions: set[int] | None = None) -> None:
        """Wait for in-flight records (of `partitions`, or all) and commit them.

        Services call this from their revocation hook, so a partition moves only after its
        records' effects are durable and committed.
        """
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

    async def _handle(self, records: Sequence[LogRecord]) -> None:
        try:
            await self._settle(records)
        finally:
            self._slots.release()

    async def _settle(self, records: Sequence[LogRecord]) -> None:
        """Handle `records` until each is done or dead-lettered, then let the commit point pass
        them; a cancelled call leaves them unfinished."""
        backoff = self._backoff()
        attempts = 0
        while True:
            try:
                outcomes = await self._handler(records)
                break
            except Exception as err:
                if classify(err) is Disposition.LEAVE:
                    # Left in flight, so the commit point never passes these records.
                    log.warning("partition lost; records left to its owner", error=repr(err))
                    return
                attempts += 1
                if len(records) > 1 and self._given_up(err, attempts):
                    # One bad record must not take the others with it: each on its own.
                    for record in records:
                        await self._settle([record])
                    return
                if await self._failed(records[0], err, attempts, backoff.delay_s):
                    outcomes = [None]
                    break
                await backoff.sleep()
        for record, rejection in zip(records, outcomes, strict=True):
            if rejection is not None:
                await self._reject(record, rejection)
            progress = self._progress.get(record.partition)
            if progress is not None:
                progress.in_flight.discard(record.offset)

    async def _reject(self, record: LogRecord, err: Exception) -> None:
        """Dead-letter a record its handler rejected, however long the log takes to answer."""
        backoff = self._backoff()
        while not await self._dead_letter(record, err, self._where(record, 1)):
            await backoff.sleep()

    def _backoff(self) -> DoublingDelay:
        return DoublingDelay(self._retry_initial_s, self._retry_max_s)

    def _given_up(self, err: Exception, attempts: int) -> bool:
        disposition = classify(err)
        return disposition is Disposition.DEAD_LETTER or (
            disposition is Disposition.RETRY_BOUNDED and attempts >= self._max_unclassified_attempts
        )

    async def _failed(self, record: LogRecord, err: Exception, attempts: int, delay: float) -> bool:
        """Decide about a failed attempt: True when the record was set aside (it is done)."""
        where = self._where(record, attempts)
        if not self._given_up(err, attempts):
            if classify(err) is Disposition.RETRY:
                # An outage: expected, retried for as long as it lasts, no traceback needed.
                log.warning(
                    "dependency unavailable; retrying", error=repr(err), retry_in_s=delay, **where
                )
            else:
                log.exception("handler failed; retrying", retry_in_s=delay, **where)
            return False
        return await self._dead_letter(record, err, where)

    async def _dead_letter(self, record: LogRecord, err: Exception, where: dict[str, Any]) -> bool:
        try:
            await self._dead_letters.put(record, err)
        except Exception as dead_letter_err:
            log.warning(
                "cannot dead-letter the record yet; retrying",
                error=repr(dead_letter_err),
                **where,
            )
            return False
        # Bad input from outside (an intake record, say) is expected now and then: a warning.
        # Anything else set aside is a record headrace failed to handle: an error.
        level = log.warning if isinstance(err, InputError) else log.error
        level("record dead-lettered", reason=repr(err), **where)
        return True

    def _where(self, record: LogRecord, attempts: int) -> dict[str, Any]:
        return {
            "service": self._name,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "attempt": attempts,
        }

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


def _one_at_a_time(handler: Handler) -> BatchHandler:
    async def handle(records: Sequence[LogRecord]) -> Sequence[Exception | None]:
        (record,) = records
        await handler(record)
        return (None,)

    return handle
