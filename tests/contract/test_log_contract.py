"""The log port's guarantees, checked on every adapter (Kafka joins with distributed mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.database import Database
from headrace.messages.topics import partition_for
from headrace.ports.log import Consumer, Log, LogRecord

LogFactory = Callable[[], Log]


@pytest.fixture(params=["inproc-memory", "inproc-sqlite"])
async def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogFactory]:
    """A factory, so a test can 'restart' the log over the same durable storage."""
    databases: list[Database] = []

    def factory() -> Log:
        if request.param == "inproc-memory":
            return InProcLog(partitions=4)
        db = Database(str(tmp_path / "log.db"))
        databases.append(db)
        return InProcLog(partitions=4, db=db)

    yield factory
    for db in databases:
        db.close()


async def _drain(consumer: Consumer, want: int, rounds: int = 20) -> list[LogRecord]:
    out: list[LogRecord] = []
    for _ in range(rounds):
        out += await consumer.poll(100, timeout_ms=20)
        if len(out) >= want:
            break
    return out


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
        assert record.partition == partition_for(record.key, log.partitions)
        by_key.setdefault(record.key, []).append(int(record.value))
    for key, values in by_key.items():
        assert values == sorted(values), key


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


async def test_two_members_split_the_partitions_and_one_takes_all_when_the_other_leaves(
    make_log: LogFactory,
) -> None:
    log = make_log()
    assigned: dict[str, set[int]] = {"a": set(), "b": set()}

    def hooks(name: str) -> dict[str, object]:
        async def on_assigned(parts: set[int]) -> None:
            assigned[name] |= parts

        async def on_revoked(parts: set[int]) -> None:
            assigned[name] -= parts

        return {"on_assigned": on_assigned, "on_revoked": on_revoked}

    a = log.consumer("t", "g", **hooks("a"))  # type: ignore[arg-type]
    b = log.consumer("t", "g", **hooks("b"))  # type: ignore[arg-type]
    await a.start()
    await b.start()
    for _ in range(3):
        await a.poll(10, timeout_ms=10)
        await b.poll(10, timeout_ms=10)
    assert assigned["a"] and assigned["b"]
    assert not assigned["a"] & assigned["b"]
    assert assigned["a"] | assigned["b"] == set(range(log.partitions))

    await b.stop()
    await a.poll(10, timeout_ms=10)
    assert assigned["a"] == set(range(log.partitions))
    assert assigned["b"] == set()


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
    assert [r.value for r in await _drain(consumer, 1)] == [b"done"]
    db.close()
