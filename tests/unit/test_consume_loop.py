"""The consume loop commits only finished records, and shutdown never waits on a stuck one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from headrace.adapters.inproc.log import InProcLog
from headrace.core.errors import Fenced, InputError, TransientError
from headrace.messages.records import WORK_CODEC, CancelRun
from headrace.ports.log import BatchHandler, LogRecord, Outgoing
from headrace.runtime.consume import ConsumeLoop, Handler
from headrace.runtime.dead_letter import DeadLetters
from headrace.runtime.loops import Loops


async def test_a_record_stuck_at_shutdown_stays_uncommitted_and_is_delivered_again() -> None:
    log = InProcLog(partitions=1)
    for value in (b"ok-0", b"stuck", b"ok-2"):
        await log.publish("t", "acct", value)
    handled: list[bytes] = []

    async def handler(record: LogRecord) -> None:
        if record.value == b"stuck":
            await asyncio.Event().wait()
        handled.append(record.value)

    loops = Loops(log, "dead-letter")
    loops.add("t", "g", handler, concurrency=10)
    await loops.start()
    for _ in range(100):
        if len(handled) == 2:
            break
        await asyncio.sleep(0.01)
    assert handled == [b"ok-0", b"ok-2"]
    await asyncio.wait_for(loops.stop(), timeout=10)

    again = log.consumer("t", "g")
    await again.start()
    records = await again.poll(10, timeout_ms=100)
    assert [r.value for r in records] == [b"stuck", b"ok-2"]


async def _run_until(loop: ConsumeLoop, done: Callable[[], bool]) -> None:
    await loop.consumer.start()
    task = asyncio.create_task(loop.run())
    for _ in range(500):
        if done():
            break
        await asyncio.sleep(0.01)
    await loop.stop()
    await loop.consumer.stop()
    task.cancel()


def _loop(log: InProcLog, handler: Handler, *, max_unclassified_attempts: int = 3) -> ConsumeLoop:
    return ConsumeLoop(
        log.consumer("t", "g"),
        handler,
        name="svc",
        dead_letters=DeadLetters(log, "dead", "svc"),
        concurrency=4,
        retry_initial_s=0.001,
        retry_max_s=0.002,
        max_unclassified_attempts=max_unclassified_attempts,
    )


async def _dead(log: InProcLog) -> list[LogRecord]:
    consumer = log.consumer("dead", "reader")
    await consumer.start()
    records = await consumer.poll(10, timeout_ms=100)
    await consumer.stop()
    return records


async def test_a_record_that_cannot_decode_is_dead_lettered_untouched_and_the_rest_flow_on() -> (
    None
):
    log = InProcLog(partitions=1)
    await log.publish("t", "acct", WORK_CODEC.encode(CancelRun(account_id="acct", run_id="r1")))
    await log.publish("t", "acct", b"\xc1 not msgpack", [("traceparent", b"00-abc")])
    await log.publish("t", "acct", WORK_CODEC.encode(CancelRun(account_id="acct", run_id="r3")))
    handled: list[str] = []

    async def handler(record: LogRecord) -> None:
        handled.append(WORK_CODEC.decode(record.value).run_id)

    await _run_until(_loop(log, handler), lambda: len(handled) == 2)

    assert handled == ["r1", "r3"]
    [dead] = await _dead(log)
    assert dead.value == b"\xc1 not msgpack"
    assert dead.key == "acct"
    headers = dict(dead.headers)
    assert headers["traceparent"] == b"00-abc"
    assert headers["headrace.dead-letter.reason"].startswith(b"DecodeError")
    assert headers["headrace.dead-letter.topic"] == b"t"
    assert headers["headrace.dead-letter.offset"] == b"1"
    assert headers["headrace.dead-letter.service"] == b"svc"
    again = log.consumer("t", "g")
    await again.start()
    assert await again.poll(10, timeout_ms=50) == []  # committed past all three


async def test_an_outage_is_retried_until_it_ends_and_nothing_is_dead_lettered() -> None:
    log = InProcLog(partitions=1)
    await log.publish("t", "acct", b"x")
    attempts = 0

    async def handler(_: LogRecord) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 20:  # many more than the bound for unclassified errors
            raise TransientError("cassandra does not answer")

    await _run_until(_loop(log, handler), lambda: attempts >= 20)

    assert attempts == 20
    assert await _dead(log) == []


async def test_a_record_of_a_lost_partition_is_left_uncommitted_for_its_owner() -> None:
    """Fenced: a newer owner has acted for the partition. The record is neither retried nor
    dead-lettered, and the commit point stays before it, so the owner gets it; the records
    before it are committed."""
    log = InProcLog(partitions=1)
    for value in (b"ok-0", b"fenced", b"ok-2"):
        await log.publish("t", "acct", value)
    attempts: list[bytes] = []

    async def handler(record: LogRecord) -> None:
        attempts.append(record.value)
        if record.value == b"fenced":
            raise Fenced("a newer owner wrote the run")

    await _run_until(_loop(log, handler), lambda: len(attempts) == 3)

    assert attempts == [b"ok-0", b"fenced", b"ok-2"]
    assert await _dead(log) == []
    again = log.consumer("t", "g")
    await again.start()
    assert [r.value for r in await again.poll(10, timeout_ms=100)] == [b"fenced", b"ok-2"]


async def test_an_unclassified_error_is_retried_a_bounded_number_of_times_then_dead_lettered() -> (
    None
):
    log = InProcLog(partitions=1)
    await log.publish("t", "acct", b"x")
    attempts = 0

    async def handler(_: LogRecord) -> None:
        nonlocal attempts
        attempts += 1
        raise KeyError("a bug")

    loop = _loop(log, handler, max_unclassified_attempts=3)
    # Stopping waits for the record in flight, so it is dead-lettered by then.
    await _run_until(loop, lambda: attempts >= 3)

    assert attempts == 3
    [dead] = await _dead(log)
    assert dict(dead.headers)["headrace.dead-letter.reason"] == b"KeyError: 'a bug'"


def _batched(log: InProcLog, handler: BatchHandler) -> ConsumeLoop:
    return ConsumeLoop(
        log.consumer("t", "g"),
        name="svc",
        dead_letters=DeadLetters(log, "dead", "svc"),
        batch_handler=handler,
        batch_size=10,
        concurrency=2,
        retry_initial_s=0.001,
        retry_max_s=0.002,
        max_unclassified_attempts=3,
    )


async def _committed_past_all(log: InProcLog) -> bool:
    again = log.consumer("t", "g")
    await again.start()
    left = await again.poll(100, timeout_ms=50)
    await again.stop()
    return left == []


async def test_a_batch_handler_gets_the_records_together_and_its_rejections_are_dead_lettered() -> (
    None
):
    log = InProcLog(partitions=1)
    await log.publish_many("t", [Outgoing("acct", f"r{i}".encode()) for i in range(25)])
    batches: list[list[bytes]] = []

    async def handler(records: Sequence[LogRecord]) -> list[Exception | None]:
        batches.append([r.value for r in records])
        return [InputError("bad") if r.value == b"r13" else None for r in records]

    await _run_until(_batched(log, handler), lambda: sum(map(len, batches)) == 25)

    assert [len(b) for b in batches] == [10, 10, 5]
    [dead] = await _dead(log)
    assert dead.value == b"r13"
    assert dict(dead.headers)["headrace.dead-letter.reason"] == b"InputError: bad"
    assert await _committed_past_all(log)


async def test_a_failing_batch_is_handled_record_by_record_so_a_bad_record_stays_alone() -> None:
    log = InProcLog(partitions=1)
    await log.publish_many("t", [Outgoing("acct", f"r{i}".encode()) for i in range(5)])
    done: list[bytes] = []

    async def handler(records: Sequence[LogRecord]) -> list[Exception | None]:
        if any(r.value == b"r2" for r in records):
            raise KeyError("a bug this record sets off")
        done.extend(r.value for r in records)
        return [None] * len(records)

    await _run_until(_batched(log, handler), lambda: len(done) == 4)

    assert done == [b"r0", b"r1", b"r3", b"r4"]
    [dead] = await _dead(log)
    assert dead.value == b"r2"
    assert await _committed_past_all(log)


async def test_a_batch_that_meets_an_outage_is_retried_whole_until_it_ends() -> None:
    log = InProcLog(partitions=1)
    await log.publish_many("t", [Outgoing("acct", f"r{i}".encode()) for i in range(5)])
    calls: list[int] = []

    async def handler(records: Sequence[LogRecord]) -> list[Exception | None]:
        calls.append(len(records))
        if len(calls) < 10:
            raise TransientError("kafka does not answer")
        return [None] * len(records)

    await _run_until(_batched(log, handler), lambda: len(calls) >= 10)

    assert calls == [5] * 10
    assert await _dead(log) == []
    assert await _committed_past_all(log)


async def test_a_hook_that_meets_an_outage_runs_again_and_the_loop_goes_on_consuming() -> None:
    """An assignment hook that raises (an executor taking its partition's epoch from a
    Cassandra that is restarting) propagates from `poll`; the loop polls again, the hook runs
    again, and no record of the partition is handled before it succeeds. Found by the fault
    schedule: the loop's task died with the error, the member never polled again, and its
    consumer group stalled in a rebalance for good while the process reported ready."""
    log = InProcLog(partitions=1)
    await log.publish("t", "acct", b"x")
    hooks: list[bool] = []  # whether each run of the hook succeeded
    handled: list[tuple[bytes, int]] = []  # each record, with the hook runs done by then

    async def on_assigned(_: set[int]) -> None:
        hooks.append(len(hooks) >= 2)
        if not hooks[-1]:
            raise TransientError("cassandra restarting")

    async def handler(record: LogRecord) -> None:
        handled.append((record.value, len(hooks)))

    loop = ConsumeLoop(
        log.consumer("t", "g", on_assigned=on_assigned),
        handler,
        name="svc",
        dead_letters=DeadLetters(log, "dead", "svc"),
        retry_initial_s=0.001,
        retry_max_s=0.002,
    )
    await _run_until(loop, lambda: bool(handled))

    assert hooks == [False, False, True]
    assert handled == [(b"x", 3)]
