"""Settling records: a handler call retried until each record is done or set aside.

A handler that raises is retried with backoff (its effects are idempotent), or its record is
set aside in the dead-letter topic when it can never succeed (see runtime/failures.py); never
skipped silently. Which records run when, and what is committed, is the consume loop's
(runtime/consume.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from headrace.core.doubling import DoublingDelay
from headrace.core.errors import InputError
from headrace.ports.log import BatchHandler, Handler, LogRecord
from headrace.runtime.dead_letter import DeadLetters
from headrace.runtime.failures import Disposition, classify

log = structlog.get_logger(__name__)

# Told of each record once it is done or set aside: the commit point may pass it.
Finished = Callable[[LogRecord], None]


class Settler:
    def __init__(
        self,
        handler: BatchHandler,
        finished: Finished,
        *,
        name: str,
        dead_letters: DeadLetters,
        retry_initial_s: float,
        retry_max_s: float,
        max_unclassified_attempts: int,
    ) -> None:
        self._handler = handler
        self._finished = finished
        self._name = name
        self._dead_letters = dead_letters
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._max_unclassified_attempts = max_unclassified_attempts

    async def settle(self, records: Sequence[LogRecord]) -> None:
        """Handle `records` until each is done or dead-lettered, and tell `finished` of it; a
        record of a lost partition, or of a cancelled call, stays unfinished."""
        backoff = self._backoff()
        attempts = 0
        while True:
            try:
                outcomes = await self._handler(records)
                break
            except Exception as err:
                if classify(err) is Disposition.LEAVE:
                    # Left unfinished, so the commit point never passes these records.
                    log.warning("partition lost; records left to its owner", error=repr(err))
                    return
                attempts += 1
                if len(records) > 1 and self._given_up(err, attempts):
                    # One bad record must not take the others with it: each on its own.
                    for record in records:
                        await self.settle([record])
                    return
                if await self._failed(records[0], err, attempts, backoff.delay_s):
                    outcomes = [None]
                    break
                await backoff.sleep()
        for record, rejection in zip(records, outcomes, strict=True):
            if rejection is not None:
                await self._reject(record, rejection)
            self._finished(record)

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


def one_at_a_time(handler: Handler) -> BatchHandler:
    """A record handler as a batch handler of one-record batches."""

    async def handle(records: Sequence[LogRecord]) -> Sequence[Exception | None]:
        (record,) = records
        await handler(record)
        return (None,)

    return handle
