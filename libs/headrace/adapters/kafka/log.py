"""The log port over Apache Kafka (aiokafka): keyed records, consumer groups, explicit commits.

It keeps the guarantees of headrace.ports.log:
- Every topic has `partitions` partitions; a missing topic is created with that count (and the
  configured replication factor) on first use, and one with another count is an error.
- A record goes to partition `partition_for(key, partitions)`, the same function the in-process
  log uses, passed to the producer explicitly so the placement never depends on a producer
  setting: an account's records share a partition number in every topic.
- `publish` returns once every in-sync replica has the record (`acks="all"`); the producer is
  idempotent, so its internal retries never duplicate or reorder a key's records.
- Consumers commit only through `commit` and start from the beginning of a partition the group
  never committed; see `headrace.adapters.kafka.consumer`. Tails use no group at all; see
  `headrace.adapters.kafka.tail`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)
from aiokafka.producer.message_accumulator import BatchBuilder

from headrace.adapters.kafka.admin import ensure_topics
from headrace.adapters.kafka.consumer import GroupSettings, KafkaConsumer
from headrace.adapters.kafka.errors import translating
from headrace.adapters.kafka.security import PLAINTEXT, KafkaSecurity, start_client
from headrace.adapters.kafka.tail import KafkaTail
from headrace.core.errors import TransientError
from headrace.messages.topics import partition_for
from headrace.ports.log import MAX_RECORD_BYTES, Outgoing, PartitionsCallback

# Durable when acknowledged, and no duplicates or reordering from the producer's own retries.
PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "max_request_size": MAX_RECORD_BYTES,
    # Batches of `publish_many` (and of sends that meet in the accumulator) up to 1 MiB; 16 KiB,
    # the default, holds some 50 events (see benchmarks/intake_throughput.md).
    "max_batch_size": 1024 * 1024,
}


log = structlog.get_logger(__name__)

# The broker no longer knows the idempotent producer's id or sequence (it restarted and lost its
# producer state, say): that producer can never send again; a new one, with a new id, can.
_PRODUCER_STATE_LOST = (
    OutOfOrderSequenceNumber,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    UnknownProducerId,
)


# aiokafka slows down sharply past this many sends awaiting their acknowledgement (64 x 100 sends
# to one partition: 850 records/s unbounded, 14,000/s bounded at 32-64, measured on loopback
# Kafka on 2 cores); callers past it wait their turn.
MAX_SENDS_IN_FLIGHT = 64


def _append(batch: BatchBuilder, outgoing: Outgoing) -> bool:
    return (
        batch.append(
            key=outgoing.key.encode(),
            value=outgoing.value,
            timestamp=None,
            headers=list(outgoing.headers),
        )
        is not None
    )


class ProducerReset(TransientError):
    """The producer lost its idempotence state and was replaced: publish again. The record may
    have been written once already; consumers are idempotent."""


class LogClosedError(RuntimeError):
    """The log was used after `close()`: a bug in the caller's shutdown order, not retriable."""


class KafkaLog:
    """The log on a Kafka cluster.

    `topic_prefix` and `group_prefix` are prepended to every topic name and consumer group id
    on the cluster (records still report the unprefixed topic), so several deployments, or
    tests, can share a cluster. The group timeouts default to values for production; tests pass
    shorter ones (the local broker allows a session of 500 ms) so that a member that dies is
    noticed in a few seconds. A member that stops cleanly leaves the group at once regardless.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        partitions: int,
        replication_factor: int = 1,
        client_id: str = "headrace",
        topic_prefix: str = "",
        group_prefix: str = "",
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1_000,
        rebalance_timeout_ms: int = 30_000,
        security: KafkaSecurity = PLAINTEXT,
        retention_ms: Mapping[str, int] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        # topic -> its retention.ms, set when this log creates it (others keep the broker's).
        self._retention_ms = dict(retention_ms or {})
        self._security = security
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._client_id = client_id
        self._topic_prefix = topic_prefix
        self._group_prefix = group_prefix
        self._group_settings = GroupSettings(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            security=security,
        )
        self._producer: AIOKafkaProducer | None = None
        self._sending = asyncio.Semaphore(MAX_SENDS_IN_FLIGHT)
        self._producer_lock = asyncio.Lock()
        self._topics_lock = asyncio.Lock()
        self._ready_topics: set[str] = set()
        self._consumers: set[KafkaConsumer] = set()
        self._tails: set[KafkaTail] = set()
        self._closed = False

    @property
    def partitions(self) -> int:
        return self._partitions

    def topic_name(self, topic: str) -> str:
        """The name of `topic` on the cluster."""
        return self._topic_prefix + topic

    @translating
    async def ensure_topics(self, topics: Iterable[str]) -> None:
        """Create the missing ones of `topics` with the configured partition count.

        Raises TopicError (with `retriable`) when a topic cannot be created or exists with a
        different partition count. Each topic is checked once per KafkaLog.
        """
        wanted = {self.topic_name(topic) for topic in topics} - self._ready_topics
        if not wanted:
            return
        async with self._topics_lock:
            wanted -= self._ready_topics
            if wanted:
                configs = {
                    self.topic_name(topic): {"retention.ms": str(ms)}
                    for topic, ms in self._retention_ms.items()
                }
                await ensure_topics(
                    self._bootstrap,
                    wanted,
                    configs=configs,
                    partitions=self._partitions,
                    replication_factor=self._replication_factor,
                    client_id=self._client_id,
                    security=self._security,
                )
                self._ready_topics |= wanted

    @translating
    async def publish(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Append a record; durable when this returns.

        Raises `KafkaUnavailable` when the cluster did not acknowledge the record within the
        producer's own retries, `RecordRejected` when it never will (see .errors).
        """
        await self.ensure_topics([topic])
        producer = await self._started_producer()
        try:
            async with self._sending:
                await producer.send_and_wait(
                    self.topic_name(topic),
                    value,
                    key=key.encode(),
                    partition=partition_for(key, self._partitions),
                    headers=list(headers),
                )
        except _PRODUCER_STATE_LOST as err:
            await self._replace_producer(producer)
            raise ProducerReset(f"the Kafka producer was replaced after {err!r}") from err

    @translating
    async def publish_many(self, topic: str, records: Sequence[Outgoing]) -> None:
        """Append the records, durable when this returns: each partition's share goes as whole
        producer batches (a few hundred records per request instead of one future each).

        Raises as `publish` does; any of the records may have been written then.
        """
        if not records:
            return
        await self.ensure_topics([topic])
        producer = await self._started_producer()
        name = self.topic_name(topic)
        by_partition: dict[int, list[Outgoing]] = {}
        for outgoing in records:
            partition = partition_for(outgoing.key, self._partitions)
            by_partition.setdefault(partition, []).append(outgoing)
        sent: list[asyncio.Future[Any]] = []
        try:
            for partition, share in by_partition.items():
                batch = producer.create_batch()
                for outgoing in share:
                    # A full batch refuses the record (an empty one takes any): send, go on.
                    while not _append(batch, outgoing):
                        sent.append(await producer.send_batch(batch, name, partition=partition))
                        batch = producer.create_batch()
                sent.append(await producer.send_batch(batch, name, partition=partition))
            await asyncio.gather(*sent)
        except _PRODUCER_STATE_LOST as err:
            await self._replace_producer(producer)
            raise ProducerReset(f"the Kafka producer was replaced after {err!r}") from err
        finally:
            # Nobody awaits the rest after a failure: retrieve their errors so none is "never
            # retrieved".
            for future in sent:
                if future.done() and not future.cancelled():
                    future.exception()

    @translating
    async def ping(self) -> None:
        """Raise unless a broker answers a metadata request now (a readiness probe)."""
        producer = await self._started_producer()
        await producer.client.fetch_all_metadata()

    def consumer(
        self,
        topic: str,
        group: str,
        *,
        on_assigned: PartitionsCallback | None = None,
        on_revoked: PartitionsCallback | None = None,
    ) -> KafkaConsumer:
        self._check_open()
        consumer = KafkaConsumer(
            self,
            topic,
            self._group_prefix + group,
            self._group_settings,
            on_assigned=on_assigned,
            on_revoked=on_revoked,
        )
        self._consumers.add(consumer)
        return consumer

    def tail(self, topic: str) -> KafkaTail:
        self._check_open()
        tail = KafkaTail(self, topic, self._bootstrap, self._client_id, self._security)
        self._tails.add(tail)
        return tail

    async def close(self) -> None:
        """Stop the producer, and any consumer still running (each leaves its group cleanly)."""
        self._closed = True
        try:
            for consumer in list(self._consumers):
                await consumer.stop()
            for tail in list(self._tails):
                await tail.stop()
        finally:
            async with self._producer_lock:
                if self._producer is not None:
                    await self._producer.stop()
                    self._producer = None

    # --- used by consumers ---

    def _forget(self, consumer: KafkaConsumer) -> None:
        self._consumers.discard(consumer)

    def _forget_tail(self, tail: KafkaTail) -> None:
        self._tails.discard(tail)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("the Kafka log is closed")

    async def _replace_producer(self, broken: AIOKafkaProducer) -> None:
        """Drop `broken` (once, however many sends saw it fail); the next publish starts anew."""
        async with self._producer_lock:
            replaced = self._producer is broken
            if replaced:
                self._producer = None
        if replaced:
            log.warning("Kafka producer lost its idempotence state; starting a new one")
            await broken.stop()

    async def _started_producer(self) -> AIOKafkaProducer:
        """The producer, started on first use (the constructor cannot await)."""
        self._check_open()
        if self._producer is not None:
            return self._producer
        async with self._producer_lock:
            self._check_open()
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    **PRODUCER_SETTINGS,
                    **self._security.client_options(),
                )
                try:
                    await start_client(producer, self._bootstrap, self._security)
                except BaseException:
                    await producer.stop()  # releases the connections a failed start opened
                    raise
                self._producer = producer
            return self._producer
