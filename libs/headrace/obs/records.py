"""Observing the log: trace context in record headers, counts of records, consumer lag.

`ObservedLog` wraps any Log adapter: each published record carries the current trace context
in its headers and is counted. `observed_handler` wraps a consume loop's handler: the record's
trace context is current while it runs, and it is counted once handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog
from opentelemetry import context as otel_context

from headrace.obs.metrics import record_consumed, record_produced, set_consumer_lag
from headrace.obs.tracing import extract, inject
from headrace.ports.log import Consumer, Log, LogRecord, PartitionsCallback

log = structlog.get_logger(__name__)
Handler = Callable[[LogRecord], Awaitable[None]]


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

    def consumer(
        self,
        topic: str,
        group: str,
        *,
        on_assigned: PartitionsCallback | None = None,
        on_revoked: PartitionsCallback | None = None,
    ) -> Consumer:
        return self.inner.consumer(topic, group, on_assigned=on_assigned, on_revoked=on_revoked)

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
