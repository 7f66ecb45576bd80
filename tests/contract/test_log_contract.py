"""The log port's guarantees, checked on every adapter: in-process (memory, SQLite) and Kafka.

Kafka needs time for group joins and rebalances, so the helpers poll until a condition holds
within a bounded time rather than for a fixed number of rounds; the in-process log meets each
condition at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.kafka.log import KafkaLog
from headrace.adapters.sqlite.database import Database
from headrace.messages.topics import partition_for
from headrace.ports.log import Consumer, Log, LogRecord, Outgoing, PartitionsCallback, Tail

LogFactory = Callable[[], Log]

DEADLINE_S = 20.0
# Members crash in no test here, so the session timeout only bounds a stalled event loop; the
# short heartbeat is what makes a member notice a rebalance quickly.
KAFKA_GROUP_TIMEOUTS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 100}


@pytest.fixture(
    params=["inproc-memory", "inproc-sqlite", pytest.param("kafka", marks=pytest.mark.kafka)]
)
async def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogFactory]:
    """A factory, so a test can 'restart' the log over the same durable storage."""
    databases: list[Database] = []
    logs: list[Log] = []
    kafka: tuple[str, str] | None = None
    if request.param == "kafka":
        # Topics and groups get a prefix unique to the test; the tests themselves say "t", "g".
        kafka = (
            request.getfixturevalue("kafka_bootstrap"),
            request.getfixturevalue("kafka_topic_prefix"),
        )

    def factory() -> Log:
        log: Log
        if kafka is not None:
            bootstrap, prefix = kafka
            log = KafkaLog(
                bootstrap,
                partitions=4,
                topic_prefix=prefix,
                group_prefix=prefix,
                **KAFKA_GROUP_TIMEOUTS,
            )
        elif request.param == "inproc-memory":
            log = InProcLog(partitions=4)
        else:
            db = Database(str(tmp_path / "log.db"))
            databases.append(db)
            log = InProcLog(partitions=4, db=db)
        logs.append(log)
        return log

    yield factory
    for log in logs:
        await log.close()
    for db in databases:
        db.close()
    if kafka is not None:
        await _delete_topics(*kafka)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


async def _drain(consumer: Consumer, want: int) -> list[LogRecord]:
    """Poll until `want` records came (or the deadline passed: the caller's assert tells)."""
    out: list[LogRecord] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(out) < want and time.monotonic() < deadline:
        out += await consumer.poll(100, timeout_ms=100)
    return out


async def _poll_until(
    consumers: Iterable[Consumer],
    condition: Callable[[], bool],
    what: str,
    received: list[LogRecord] | None = None,
) -> None:
    """Poll every member in turn (hooks run inside poll) until `condition` holds."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {DEADLINE_S:.0f} s waiting for {what}")
        for consumer in consumers:
            records = await consumer.poll(100, timeout_ms=20)
            if received is not None:
                received += records


def _tracking_hooks(
    assigned: dict[str, set[int]], name: str
) -> tuple[PartitionsCallback, PartitionsCallback]:
    async def on_assigned(parts: set[int]) -> None:
        assigned[name] |= parts

    async def on_revoked(parts: set[int]) -> None:
        assigned[name] -= parts

    return on_assigned, on_revoked


async def test_records_with_one_key_share_a_partition_and_keep_their_order(
    make_log: LogFactory,
) -> None:
    log = make_log()
    for i in range(20):
        await log.publish("t", f"acct-{i % 3}", str(i).encode())
    consumer = log.consumer("t", "g")
    await consumer.start()
    records = await _drain(consumer, 20)
    assert len(records) == 20
    by_key: dict[str, list[int]] = {}
    for record in records:
        assert record.topic == "t"
        assert record.partition == partition_for(record.key, log.partitions)
        by_key.setdefault(record.key, []).append(int(record.value))
    for key, values in by_key.items():
        assert values == sorted(values), key
    await consumer.stop()


async def test_publish_many_places_each_record_by_its_key_in_order_with_its_headers(
    make_log: LogFactory,
) -> None:
    log = make_log()
    # Enough records to fill several producer batches on Kafka (1 MiB each).
    big = b"x" * 20_000
    records = [
        Outgoing(f"acct-{i % 3}", str(i).encode() + b":" + big, (("n", str(i).encode()),))
        for i in range(300)
    ]
    await log.publish_many("t", records)
    await log.publish_many("t", [])
    consumer = log.consumer("t", "g")
    await consumer.start()
    received = await _drain(consumer, 300)
    assert len(received) == 300
    by_key: dict[str, list[int]] = {}
    for record in received:
        n = int(record.value.split(b":")[0])
        assert record.partition == partition_for(record.key, log.partitions)
        assert record.key == f"acct-{n % 3}"
        assert record.headers == (("n", str(n).encode()),)
        assert record.value.endswith(big)
        by_key.setdefault(record.key, []).append(n)
    for key, values in by_key.items():
        assert values == [n for n in range(300) if f"acct-{n % 3}" == key]
    await consumer.stop()


async def test_headers_and_payload_pass_through_unchanged(make_log: LogFactory) -> None:
    log = make_log()
    headers = (
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("empty", b""),
    )
    await log.publish("t", "acct", b"\x00payload\xff", headers)
    consumer = log.consumer("t", "g")
    await consumer.start()
    [record] = await _drain(consumer, 1)
    assert (record.key, record.value) == ("acct", b"\x00payload\xff")
    assert record.headers == headers
    await consumer.stop()


async def test_a_record_carries_its_append_time_and_keeps_it_when_delivered_again(
    make_log: LogFactory,
) -> None:
    log = make_log()
    before = time.time_ns() // 1_000_000
    await log.publish("t", "acct", b"once")
    await log.publish_many("t", [Outgoing("acct", b"in a batch")])
    after = time.time_ns() // 1_000_000
    first = log.consumer("t", "g")
    await first.start()
    records = await _drain(first, 2)
    await first.stop()

    second = log.consumer("t", "g")
    await second.start()
    again = await _drain(second, 2)
    await second.stop()
    assert [r.value for r in records] == [b"once", b"in a batch"]
    for record in records:
        assert before <= record.timestamp_ms <= after
    assert [r.timestamp_ms for r in again] == [r.timestamp_ms for r in records]


async def test_lag_counts_the_records_after_the_committed_offset_of_each_owned_partition(
    make_log: LogFactory,
) -> None:
    log = make_log()
    for i in range(10):
        await log.publish("t", "acct", str(i).encode())
    consumer = log.consumer("t", "g")
    await consumer.start()
    records = await _drain(consumer, 10)
    partition = partition_for("acct", log.partitions)
    expected = dict.fromkeys(range(log.partitions), 0)
    # Read is not committed: all ten still count.
    assert await consumer.lag() == {**expected, partition: 10}
    await consumer.commit({partition: records[3].offset + 1})
    assert await consumer.lag() == {**expected, partition: 6}
    await log.publish("t", "acct", b"10")
    assert await consumer.lag() == {**expected, partition: 7}
    await consumer.stop()
    assert await consumer.lag() == {}


async def test_uncommitted_records_are_delivered_again_to_the_next_member(
    make_log: LogFactory,
) -> None:
    log = make_log()
    for i in range(10):
        await log.publish("t", "acct", str(i).encode())
    first = log.consumer("t", "g")
    await first.start()
    records = await _drain(first, 10)
    done = records[:4]
    await first.commit({done[-1].partition: done[-1].offset + 1})
    await first.stop()

    second = log.consumer("t", "g")
    await second.start()
    again = await _drain(second, 6)
    assert [int(r.value) for r in again] == [4, 5, 6, 7, 8, 9]
    await second.stop()


async def test_two_members_split_the_partitions_and_one_takes_all_when_the_other_leaves(
    make_log: LogFactory,
) -> None:
    log = make_log()
    assigned: dict[str, set[int]] = {"a": set(), "b": set()}
    every = set(range(log.partitions))
    a_assigned, a_revoked = _tracking_hooks(assigned, "a")
    b_assigned, b_revoked = _tracking_hooks(assigned, "b")
    a = log.consumer("t", "g", on_assigned=a_assigned, on_revoked=a_revoked)
    b = log.consumer("t", "g", on_assigned=b_assigned, on_revoked=b_revoked)
    await a.start()
    await b.start()

    def split() -> bool:
        return bool(
            assigned["a"]
            and assigned["b"]
            and not assigned["a"] & assigned["b"]
            and assigned["a"] | assigned["b"] == every
        )

    await _poll_until([a, b], split, "the two members to split the partitions")
    assert a.assignment() == assigned["a"] and b.assignment() == assigned["b"]

    await b.stop()
    assert assigned["b"] == set()  # stop ran on_revoked for everything b owned
    await _poll_until([a], lambda: assigned["a"] == every, "a to take every partition")
    assert a.assignment() == every
    await a.stop()


async def test_a_member_that_commits_in_on_revoked_hands_over_without_redelivery(
    make_log: LogFactory,
) -> None:
    """What the consume loop's drain relies on: commits from on_revoked count."""
    log = make_log()
    keys = [f"acct-{i}" for i in range(8)]
    for key in keys:
        await log.publish("t", key, b"old")
    handled: dict[int, int] = {}  # partition -> next offset, of what `a` has handled

    async def commit_handled(parts: set[int]) -> None:
        await a.commit({p: handled[p] for p in parts if p in handled})

    a = log.consumer("t", "g", on_revoked=commit_handled)
    await a.start()
    for record in await _drain(a, len(keys)):
        handled[record.partition] = record.offset + 1
    assert len(handled) == len({partition_for(k, log.partitions) for k in keys})

    b = log.consumer("t", "g")
    await b.start()
    await _poll_until([a, b], lambda: bool(b.assignment()), "b to get partitions")
    received: list[LogRecord] = []
    for key in keys:
        await log.publish("t", key, b"new")
    await _poll_until(
        [a, b], lambda: len(received) >= len(keys), "the new records", received=received
    )
    assert sorted(r.key for r in received) == sorted(keys)
    assert {r.value for r in received} == {b"new"}
    await a.stop()
    await b.stop()


async def test_no_record_is_read_before_on_assigned_has_finished(make_log: LogFactory) -> None:
    log = make_log()
    for i in range(8):
        await log.publish("t", f"acct-{i}", b"x")
    ready: set[int] = set()

    async def load_state(parts: set[int]) -> None:
        # A service loads the partitions' state here; reads must wait for it.
        await asyncio.sleep(0.1)
        ready.update(parts)

    consumer = log.consumer("t", "g", on_assigned=load_state)
    await consumer.start()
    records: list[LogRecord] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(records) < 8 and time.monotonic() < deadline:
        batch = await consumer.poll(100, timeout_ms=100)
        assert {r.partition for r in batch} <= ready
        records += batch
    assert len(records) == 8
    await consumer.stop()


async def test_published_records_survive_a_restart_of_the_durable_inproc_log(
    tmp_path: Path,
) -> None:
    db = Database(str(tmp_path / "log.db"))
    log = InProcLog(partitions=4, db=db)
    await log.publish("t", "acct", b"kept")
    await log.publish("t", "acct", b"done")
    consumer = log.consumer("t", "g")
    await consumer.start()
    records = await _drain(consumer, 2)
    await consumer.commit({records[0].partition: records[0].offset + 1})
    db.close()

    db = Database(str(tmp_path / "log.db"))
    consumer = InProcLog(partitions=4, db=db).consumer("t", "g")
    await consumer.start()
    [again] = await _drain(consumer, 1)
    assert (again.value, again.timestamp_ms) == (b"done", records[1].timestamp_ms)
    db.close()


async def test_the_durable_inproc_log_reads_records_stored_before_they_had_a_time(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "log.db")
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE log_records (topic TEXT, partition INTEGER, offset INTEGER, key TEXT, "
        "value BLOB, headers BLOB, PRIMARY KEY (topic, partition, offset))"
    )
    conn.execute(
        "INSERT INTO log_records VALUES ('t', ?, 0, 'acct', ?, ?)",
        (partition_for("acct", 4), b"old", msgspec.msgpack.encode([])),
    )
    conn.commit()
    conn.close()
    db = Database(path)
    log = InProcLog(partitions=4, db=db)
    await log.publish("t", "acct", b"new")
    consumer = log.consumer("t", "g")
    await consumer.start()
    old, new = await _drain(consumer, 2)
    assert (old.value, old.timestamp_ms) == (b"old", 0)
    assert new.value == b"new" and new.timestamp_ms > 0
    db.close()


async def _drain_tail(tail: Tail, want: int) -> list[LogRecord]:
    out: list[LogRecord] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(out) < want and time.monotonic() < deadline:
        out += await tail.poll(100, timeout_ms=100)
    return out


async def test_every_tail_gets_each_record_appended_after_its_start_and_none_before(
    make_log: LogFactory,
) -> None:
    log = make_log()
    await log.publish("t", "acct-0", b"before")
    first, second = log.tail("t"), log.tail("t")
    await first.start()
    await second.start()
    keys = [f"acct-{i}" for i in range(8)]  # spread over the partitions
    await log.publish_many("t", [Outgoing(key, key.encode()) for key in keys])
    for tail in (first, second):
        records = await _drain_tail(tail, len(keys))
        assert sorted(r.value for r in records) == sorted(k.encode() for k in keys)
        # Nothing more: not "before", and no record twice.
        assert await tail.poll(100, timeout_ms=300) == []
    # A group reading the topic meanwhile takes nothing from the tails, nor they from it.
    group = log.consumer("t", "g")
    await group.start()
    assert len(await _drain(group, len(keys) + 1)) == len(keys) + 1
    await log.publish("t", "acct-1", b"after")
    assert [r.value for r in await _drain_tail(first, 1)] == [b"after"]
    await group.stop()
    await first.stop()
    await second.stop()
