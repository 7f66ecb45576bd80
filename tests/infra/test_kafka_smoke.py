"""Smoke tests on the real Kafka broker: the guarantees the engine's Kafka adapter relies on.

Each test makes its own topics (`new_topic`) and consumer groups (`kafka_topic_prefix`), and
uses a short session timeout (the broker allows 500 ms) so group joins and rebalances take about
a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from headrace.testing.infra import NewTopicFactory

pytestmark = pytest.mark.kafka

FAST_GROUP = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 100}
DEADLINE_S = 20.0


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def produce(
    bootstrap: str, topic: str, values: Iterable[bytes], partition: int | None = None
) -> None:
    async with AIOKafkaProducer(bootstrap_servers=bootstrap) as producer:
        for value in values:
            await producer.send_and_wait(topic, value, key=value, partition=partition)


async def read(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord]:
    """Exactly `count` records (a batch may be cut short: the rest stays unread)."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(records) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"read {len(records)} of {count} records")
        batches = await consumer.getmany(timeout_ms=200, max_records=count - len(records))
        for batch in batches.values():
            records.extend(batch)
    return records


async def read_all(
    bootstrap: str, topic: str, partitions: int, isolation_level: str
) -> list[bytes]:
    """Every record value in `topic` visible at `isolation_level`, up to its end offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level=isolation_level, enable_auto_commit=False
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        # For read_committed the end offset is the last stable offset: after every commit/abort.
        ends = await consumer.end_offsets(assigned)
        values: list[bytes] = []
        deadline = time.monotonic() + DEADLINE_S
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "did not reach the end offsets"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                values.extend(record.value for record in batch if record.value is not None)
        return values
    finally:
        await consumer.stop()


async def test_idempotent_producer_writes_each_record_once_in_order(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic("idempotent")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    async with producer:
        # start() succeeded only if the broker answered InitProducerId with a producer id.
        assert producer._txn_manager is not None and producer._txn_manager.producer_id >= 0
        pending = [await producer.send(topic, str(i).encode(), key=b"run") for i in range(200)]
        offsets = [metadata.offset for metadata in await asyncio.gather(*pending)]
    assert offsets == list(range(200))
    values = await read_all(kafka_bootstrap, topic, 1, "read_uncommitted")
    assert values == [str(i).encode() for i in range(200)]


async def test_transaction_commits_output_and_offsets_together(
    kafka_bootstrap: str, new_topic: NewTopicFactory, kafka_topic_prefix: str
) -> None:
    source = await new_topic("source", partitions=2)
    sink = await new_topic("sink", partitions=2)
    group = kafka_topic_prefix + "processor"
    await produce(kafka_bootstrap, source, [f"event-{i}".encode() for i in range(10)])

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **FAST_GROUP,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=kafka_topic_prefix + "tx"
    )
    async with consumer, producer:
        records = await read(consumer, 10)
        async with producer.transaction():
            for record in records:
                await producer.send(sink, b"done:" + record.value, key=record.key)
            next_offsets: dict[TopicPartition, int] = {}
            for record in records:
                tp = TopicPartition(record.topic, record.partition)
                next_offsets[tp] = max(next_offsets.get(tp, 0), record.offset + 1)
            await producer.send_offsets_to_transaction(next_offsets, group)

        await producer.begin_transaction()
        await producer.send(sink, b"never-visible", key=b"x")
        await producer.abort_transaction()

        ends = await consumer.end_offsets(list(next_offsets))
        committed = {tp: await consumer.committed(tp) for tp in next_offsets}
    assert committed == ends  # the group's offsets moved in the same transaction

    visible = await read_all(kafka_bootstrap, sink, 2, "read_committed")
    assert sorted(visible) == sorted(b"done:" + r.value for r in records)
    uncommitted = await read_all(kafka_bootstrap, sink, 2, "read_uncommitted")
    assert b"never-visible" in uncommitted and len(uncommitted) == 11


async def test_group_splits_partitions_and_rebalances_when_a_member_leaves(
    kafka_bootstrap: str, new_topic: NewTopicFactory, kafka_topic_prefix: str
) -> None:
    topic = await new_topic("work", partitions=4)
    all_partitions = {TopicPartition(topic, p) for p in range(4)}

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=kafka_topic_prefix + "workers",
            auto_offset_reset="earliest",
            **FAST_GROUP,
        )

    first, second = member(), member()
    await first.start()
    await second.start()
    try:
        await wait_until(
            lambda: len(first.assignment()) == 2 and len(second.assignment()) == 2,
            "the two members to get two partitions each",
        )
        assert first.assignment() | second.assignment() == all_partitions
        assert not first.assignment() & second.assignment()

        for p in range(4):
            await produce(kafka_bootstrap, topic, [f"job-{p}-{i}".encode() for i in range(3)], p)
        for consumer in (first, second):
            records = await read(consumer, 6)
            assert {TopicPartition(r.topic, r.partition) for r in records} == consumer.assignment()

        await second.stop()  # leaves the group: the survivor must take over its partitions
        await wait_until(lambda: first.assignment() == all_partitions, "the rebalance")
    finally:
        await first.stop()
        await second.stop()


async def test_new_member_resumes_from_committed_offsets(
    kafka_bootstrap: str, new_topic: NewTopicFactory, kafka_topic_prefix: str
) -> None:
    topic = await new_topic("resume")
    partition = TopicPartition(topic, 0)
    await produce(kafka_bootstrap, topic, [f"step-{i}".encode() for i in range(10)])

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=kafka_topic_prefix + "resumers",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **FAST_GROUP,
        )

    async with member() as first:
        done = await read(first, 6)
        await first.commit({partition: done[-1].offset + 1})
    async with member() as second:
        assert await second.committed(partition) == 6
        rest = await read(second, 4)
    assert [r.value for r in done + rest] == [f"step-{i}".encode() for i in range(10)]
    assert rest[0].offset == 6
