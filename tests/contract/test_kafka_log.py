"""What the Kafka log does beyond the port's contract: topic shapes, producer settings, and how
group membership changes reach the hooks. The contract itself is in test_log_contract.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaTimeoutError

from headrace.adapters.kafka import KafkaLog, LogClosedError, TopicError
from headrace.adapters.kafka.errors import KafkaUnavailable
from headrace.messages.topics import partition_for
from headrace.ports.log import Consumer, LogRecord
from headrace.runtime.consume import ConsumeLoop
from headrace.runtime.dead_letter import DeadLetters
from headrace.testing.infra import NewTopicFactory

pytestmark = pytest.mark.kafka

DEADLINE_S = 20.0
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 100}

MakeLog = Callable[..., KafkaLog]


@pytest.fixture
async def make_log(kafka_bootstrap: str, kafka_topic_prefix: str) -> AsyncIterator[MakeLog]:
    """KafkaLogs over this test's topic and group prefix; closed, and their topics deleted."""
    logs: list[KafkaLog] = []

    def make(**overrides: Any) -> KafkaLog:
        settings: dict[str, Any] = {
            "partitions": 4,
            "topic_prefix": kafka_topic_prefix,
            "group_prefix": kafka_topic_prefix,
            **FAST_GROUP,
            **overrides,
        }
        log = KafkaLog(kafka_bootstrap, **settings)
        logs.append(log)
        return log

    yield make
    for log in logs:
        await log.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(kafka_topic_prefix)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


async def _describe(bootstrap: str, topics: list[str]) -> dict[str, list[dict[str, Any]]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"]: t["partitions"] for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


async def _poll_until(consumers: list[Consumer], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        for consumer in consumers:
            await consumer.poll(100, timeout_ms=20)


async def test_topics_are_created_on_first_use_with_the_configured_shape(
    make_log: MakeLog, kafka_bootstrap: str
) -> None:
    log = make_log(partitions=3, replication_factor=1)
    await log.publish("published", "acct", b"x")
    consumer = log.consumer("consumed", "g")
    await consumer.start()
    await log.ensure_topics(["ensured", "published"])  # idempotent for existing topics
    await consumer.stop()

    names = [log.topic_name(t) for t in ("published", "consumed", "ensured")]
    described = await _describe(kafka_bootstrap, names)
    for name in names:
        assert len(described[name]) == 3, name
        assert all(len(p["replicas"]) == 1 for p in described[name]), name


async def test_a_topic_with_another_partition_count_is_refused(
    make_log: MakeLog, new_topic: NewTopicFactory
) -> None:
    await new_topic("t", partitions=2)
    log = make_log(partitions=4)
    with pytest.raises(TopicError, match=r"has 2 partitions .* configured for 4") as raised:
        await log.publish("t", "acct", b"x")
    assert raised.value.retriable is False
    with pytest.raises(TopicError):
        await log.consumer("t", "g").start()


async def test_a_replication_factor_the_cluster_cannot_give_is_not_retriable(
    make_log: MakeLog,
) -> None:
    log = make_log(replication_factor=3)  # the local cluster has one broker
    with pytest.raises(TopicError, match="replication factor 3") as raised:
        await log.ensure_topics(["t"])
    assert raised.value.retriable is False


async def test_publish_uses_an_idempotent_producer_that_waits_for_all_replicas(
    make_log: MakeLog,
) -> None:
    log = make_log()
    await log.publish("t", "acct", b"x")
    producer = log._producer
    assert producer is not None
    # aiokafka exposes neither setting; these are where it keeps them.
    assert producer._sender._acks == -1  # acks="all"
    assert producer._txn_manager is not None and producer._txn_manager.producer_id >= 0


async def test_a_plain_kafka_producer_puts_a_key_on_the_same_partition(
    make_log: MakeLog, kafka_bootstrap: str
) -> None:
    """Records written by other Kafka clients (intake topics) stay co-partitioned."""
    log = make_log(partitions=6)
    await log.ensure_topics(["intake"])
    async with AIOKafkaProducer(bootstrap_servers=kafka_bootstrap) as producer:
        for i in range(30):
            key = f"account-{i}"
            sent = await producer.send_and_wait(log.topic_name("intake"), b"x", key=key.encode())
            assert sent.partition == partition_for(key, 6), key


async def test_the_group_waits_for_the_old_owner_to_run_on_revoked_in_poll(
    make_log: MakeLog,
) -> None:
    log = make_log()
    events: list[str] = []

    async def a_revoked(parts: set[int]) -> None:
        events.append("a revoked")

    async def b_assigned(parts: set[int]) -> None:
        events.append("b assigned")

    a = log.consumer("t", "g", on_revoked=a_revoked)
    b = log.consumer("t", "g", on_assigned=b_assigned)
    await a.start()
    await _poll_until([a], lambda: a.assignment() == {0, 1, 2, 3}, "a to own every partition")

    await b.start()
    quiet_until = time.monotonic() + 1.0
    while time.monotonic() < quiet_until:  # `a` does not poll, so it cannot hand over
        assert await b.poll(100, timeout_ms=50) == []
        assert b.assignment() == set()
    await _poll_until([a, b], lambda: bool(b.assignment()), "b to get partitions")
    assert events.index("a revoked") < events.index("b assigned")


async def test_a_member_that_stops_leaves_at_once_and_close_stops_the_rest(
    make_log: MakeLog,
) -> None:
    # A session far longer than the wait below: only an explicit LeaveGroup explains a
    # quick takeover.
    log = make_log(session_timeout_ms=30_000)
    revoked: list[set[int]] = []

    async def b_revoked(parts: set[int]) -> None:
        revoked.append(parts)

    a = log.consumer("t", "g")
    b = log.consumer("t", "g", on_revoked=b_revoked)
    await a.start()
    await b.start()
    await _poll_until([a, b], lambda: bool(a.assignment() and b.assignment()), "the split")

    await a.stop()
    started = time.monotonic()
    await _poll_until([b], lambda: b.assignment() == {0, 1, 2, 3}, "b to take over")
    assert time.monotonic() - started < 5

    await log.close()  # b is still running: close stops it, so it hands over cleanly
    assert revoked[-1] == {0, 1, 2, 3}
    assert b.assignment() == set()
    with pytest.raises(LogClosedError):
        await log.publish("t", "acct", b"x")


async def test_a_commit_refused_after_a_rebalance_is_dropped_and_other_errors_raise_translated(
    make_log: MakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_log()
    consumer = log.consumer("t", "g")
    await consumer.start()
    await _poll_until([consumer], lambda: bool(consumer.assignment()), "an assignment")
    aiokafka_consumer = consumer._consumer
    assert aiokafka_consumer is not None

    async def refused(offsets: object) -> None:
        raise CommitFailedError()

    monkeypatch.setattr(aiokafka_consumer, "commit", refused)
    await consumer.commit({0: 1})  # the records will come again: nothing for the caller to do

    async def timed_out(offsets: object) -> None:
        raise KafkaTimeoutError()

    monkeypatch.setattr(aiokafka_consumer, "commit", timed_out)
    with pytest.raises(KafkaUnavailable) as outage:
        await consumer.commit({0: 1})
    assert outage.value.retryable and isinstance(outage.value.__cause__, KafkaTimeoutError)
    await consumer.commit({99: 1})  # not owned: ignored, never sent
    monkeypatch.undo()
    await asyncio.wait_for(consumer.stop(), DEADLINE_S)


@pytest.mark.parametrize("in_partition_order", [False, True], ids=["concurrently", "in-order"])
async def test_consume_loops_hand_over_partitions_without_repeating_a_record(
    make_log: MakeLog, in_partition_order: bool
) -> None:
    """The services' pattern: ConsumeLoop, with `drain` in on_revoked, as members come and go;
    in partition order, each account's records are handled in the order published too."""
    log = make_log()
    for i in range(120):
        await log.publish("t", f"acct-{i % 12}", str(i).encode())
    handled: list[tuple[str, bytes]] = []

    async def member(name: str) -> tuple[ConsumeLoop, asyncio.Task[None]]:
        async def handle(record: LogRecord) -> None:
            await asyncio.sleep(0.02)
            handled.append((name, record.value))

        async def drain(parts: set[int]) -> None:
            await loop.drain(parts)

        loop = ConsumeLoop(
            log.consumer("t", "g", on_revoked=drain),
            handle,
            name=name,
            dead_letters=DeadLetters(log, "dead-letter", name),
            concurrency=4,
            in_partition_order=in_partition_order,
        )
        await loop.consumer.start()
        return loop, asyncio.create_task(loop.run())

    async def wait_for(count: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while len(handled) < count:
            assert time.monotonic() < deadline, f"handled {len(handled)} of {count}"
            await asyncio.sleep(0.01)

    first, first_task = await member("first")
    await wait_for(20)
    second, second_task = await member("second")  # joins while first is busy
    await wait_for(60)
    await first.stop()
    await first.consumer.stop()  # drains its partitions, then leaves: second takes the rest
    first_task.cancel()
    await wait_for(120)
    await second.stop()
    await second.consumer.stop()
    second_task.cancel()
    values = sorted((value for _, value in handled), key=int)
    assert values == [str(i).encode() for i in range(120)]  # each once
    assert {name for name, _ in handled} == {"first", "second"}
    if in_partition_order:
        for account in range(12):
            of_account = [int(value) for _, value in handled if int(value) % 12 == account]
            assert of_account == sorted(of_account)


async def test_a_failing_on_assigned_raises_from_poll_and_runs_again_at_the_next(
    make_log: MakeLog,
) -> None:
    log = make_log()
    await log.publish("t", "acct", b"x")
    calls: list[set[int]] = []

    async def load_state(parts: set[int]) -> None:
        calls.append(parts)
        if len(calls) == 1:
            raise ConnectionError("store unavailable")

    consumer = log.consumer("t", "g", on_assigned=load_state)
    await consumer.start()
    deadline = time.monotonic() + DEADLINE_S
    with pytest.raises(ConnectionError):
        while time.monotonic() < deadline:
            assert await consumer.poll(100, timeout_ms=50) == []  # paused until the hook ran
    assert consumer.assignment() == set()
    records: list[LogRecord] = []
    while not records and time.monotonic() < deadline:
        records = await consumer.poll(100, timeout_ms=50)
    assert [r.value for r in records] == [b"x"]
    assert calls == [{0, 1, 2, 3}, {0, 1, 2, 3}]
    await consumer.stop()
