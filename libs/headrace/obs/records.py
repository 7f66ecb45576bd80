"""Observing the log: trace context in record headers, counts of records, consumer lag.

`ObservedLog` wraps any Log adapter: each published record carries the current trace context
in its headers and is counted. `observed_handler` wraps a consume loop's handler: the record's
trace context is current while it runs, and it is counted once handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import structlog
from opentelemetry import context as otel_context

from headrace.obs.metrics import record_consumed, record_produced, set_consumer_lag
from headrace.obs.tracing import context_headers, extract, inject
from headrace.ports.log import (
    BatchHandler,
    Consumer,
    Handler,
    Log,
    LogRecord,
    Outgoing,
    PartitionsCallback,
    Tail,
)

log = structlog.get_logger(__name__)


class ObservedLog:
    def __init__(self, inner: Log) -> None:
        self.inner = inner

    @property
    def partitions(self) -> int:
        return self.inner.partitions

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        await self.inner.publish(topic, key, value, inject(headers))
        record_produced(topic)

    async def publish_many(self, topic: str, records: Sequence[Outgoing]) -> None:
        # One trace context for all: they are published from one place at one time.
        context = context_headers()
        if context:
            records = [
                msgspec.structs.replace(r, headers=inject(r.headers, context)) for r in records
            ]
        await self.inner.publish_many(topic, records)
        record_produced(topic, len(records))

    def consumer(
        self,
        topic: str,
        group: str,
        *,
        on_assigned: PartitionsCallback | None = None,
        on_revoked: PartitionsCallback | None = None,
    ) -> Consumer:
        return self.inner.consumer(topic, group, on_assigned=on_assigned, on_revoked=on_revoked)

    def tail(self, topic: str) -> Tail:
        return self.inner.tail(topic)

    async def close(self) -> None:
        await self.inner.close()


def observed_handler(handler: Handler, topic: str, group: str) -> Handler:
    async def handle(record: LogRecord) -> None:
        token = otel_context.attach(extract(record.headers))
        try:
            await handler(record)
        finally:
            otel_context.detach(token)
        record_consumed(topic, group)

    return handle


def observed_batch_handler(handler: BatchHandler, topic: str, group: str) -> BatchHandler:
    """Count a batch's records once handled. No trace context is made current: the records
    of a batch come from many producers, each with its own."""

    async def handle(records: Sequence[LogRecord]) -> Sequence[Exception | None]:
        outcomes = await handler(records)
        record_consumed(topic, group, len(records))
        return outcomes

    return handle


async def sample_lag(consumer: Consumer, topic: str, group: str, interval_s: float) -> None:
    """Report the consumer's lag every `interval_s`, for as long as it runs."""
    reported: set[int] = set()
    while True:
        try:
            reported = set_consumer_lag(topic, group, await consumer.lag(), reported)
        except Exception as err:
            # Lag is a gauge: a missed sample is repeated at the next interval.
            log.debug("consumer lag not available", topic=topic, group=group, error=str(err))
        await asyncio.sleep(interval_s)
