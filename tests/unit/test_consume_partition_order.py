"""The consume loop in partition order, over the in-process log: each partition's records one at
a time and in offset order, partitions at once, and the commit point never past a record that
has not finished. The tests wait on events the handlers set, never on time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from headrace.adapters.inproc.log import InProcConsumer, InProcLog
from headrace.core.errors import TransientError
from headrace.messages.topics import partition_for
from headrace.ports.log import LogRecord, PartitionsCallback
from headrace.runtime.consume import DEFAULT_MAX_HELD, ConsumeLoop
from headrace.runtime.dead_letter import DeadLetters

PARTITIONS = 2
# How long a test waits for what it expects before it fails.
DEADLINE_S = 5.0


def _key_of(partition: int) -> str:
    return next(
        key
        for key in (f"acct-{n}" for n in range(100))
        if partition_for(key, PARTITIONS) == partition
    )


class Held:
    """A record's step that waits until let go."""

    def __init__(self) -> None:
        self._began, self._go_on = asyncio.Event(), asyncio.Event()

    async def __call__(self) -> None:
        self._began.set()
        await self._go_on.wait()

    async def began(self) -> None:
        await asyncio.wait_for(self._began.wait(), DEADLINE_S)

    def let_go(self) -> None:
        self._go_on.set()


class CheckedConsumer(InProcConsumer):
    """Checks each commit against the records finished so far, keeps the offsets committed, and
    tells `committing` of each commit."""

    def __init__(
        self,
        log: InProcLog,
        finished: set[tuple[int, int]],
        committing: Callable[[], None],
        on_revoked: PartitionsCallback | None,
    ) -> None:
        super().__init__(log, "t", "g", None, on_revoked)
        self._finished = finished
        self._committing = committing
        self.committed: dict[int, int] = {}
        self.passed_unfinished: list[tuple[int, int]] = []

    async def commit(self, offsets: dict[int, int]) -> None:
        for partition, offset in offsets.items():
            self.passed_unfinished += [
                (partition, o)
                for o in range(self.committed.get(partition, 0), offset)
                if (partition, o) not in self._finished
            ]
        self.committed.update(offsets)
        await super().commit(offsets)
        self._committing()


class Harness:
    """A loop in partition order whose handler runs each record's step (by its value), noting
    when records of a partition overlap and in which order they finish."""

    def __init__(
        self,
        log: InProcLog,
        on_revoked: PartitionsCallback | None = None,
        max_held: int = DEFAULT_MAX_HELD,
    ) -> None:
        self.log = log
        self.finished: set[tuple[int, int]] = set()
        self.done: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        self.attempts: list[bytes] = []
        self.overlaps: list[bytes] = []
        self.steps: dict[bytes, Callable[[], Awaitable[None]]] = {}
        self._running: set[int] = set()
        self._changed = asyncio.Event()
        self.consumer = CheckedConsumer(log, self.finished, self._signal, on_revoked)
        self.loop = ConsumeLoop(
            self.consumer,
            self._handle,
            name="svc",
            dead_letters=DeadLetters(log, "dead", "svc"),
            concurrency=PARTITIONS,
            in_partition_order=True,
            max_held=max_held,
            commit_interval_s=0.001,
            retry_initial_s=0.001,
            retry_max_s=0.001,
        )

    async def _handle(self, record: LogRecord) -> None:
        self.attempts.append(record.value)
        if record.partition in self._running:
            self.overlaps.append(record.value)
        self._running.add(record.partition)
        try:
            step = self.steps.get(record.value)
            if step is not None:
                await step()
            else:
                await asyncio.sleep(0)  # a turn for the other partition's record
        finally:
            self._running.discard(record.partition)
        self.done[record.partition].append(record.value)
        self.finished.add((record.partition, record.offset))
        self._signal()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition` holds after a record finishes or a commit."""

        async def wait() -> None:
            while not condition():
                changed = self._changed
                await changed.wait()

        await asyncio.wait_for(wait(), DEADLINE_S)

    async def publish(self, partition: int, *values: bytes) -> None:
        for value in values:
            await self.log.publish("t", _key_of(partition), value)

    async def committed(self, partition: int, offset: int) -> None:
        """Wait for the loop to commit `partition` up to `offset`."""
        await self.until(lambda: self.consumer.committed.get(partition, 0) >= offset)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with _running(Harness(InProcLog(partitions=PARTITIONS))) as h:
        yield h


@contextlib.asynccontextmanager
async def _running(h: Harness) -> AsyncIterator[Harness]:
    await h.consumer.start()
    task = asyncio.create_task(h.loop.run())
    try:
        yield h
    finally:
        await h.loop.stop(grace_s=0)
        await h.consumer.stop()
        task.cancel()


async def test_a_slow_record_of_one_partition_does_not_hold_up_another(harness: Harness) -> None:
    slow = harness.steps[b"slow"] = Held()
    await harness.publish(0, b"slow", b"after-slow")
    await slow.began()
    await harness.publish(1, b"b0", b"b1", b"b2")

    await harness.until(lambda: harness.done[1] == [b"b0", b"b1", b"b2"])
    assert harness.done[0] == []  # partition 1 went through while its slow record waited

    slow.let_go()
    await harness.until(lambda: harness.done[0] == [b"slow", b"after-slow"])
    assert harness.overlaps == []


async def test_records_of_a_partition_never_overlap_and_finish_in_order(harness: Harness) -> None:
    values = {p: [f"p{p}-{n}".encode() for n in range(30)] for p in range(PARTITIONS)}
    for n in range(30):  # interleaved, as they would arrive
        for partition in range(PARTITIONS):
            await harness.publish(partition, values[partition][n])

    await harness.until(lambda: harness.done == values)

    assert harness.overlaps == []


async def test_the_commit_point_never_passes_a_record_that_has_not_finished(
    harness: Harness,
) -> None:
    stuck = harness.steps[b"stuck"] = Held()
    await harness.publish(0, b"a0", b"stuck", b"a2", b"a3")
    await harness.publish(1, b"b0", b"b1")
    await stuck.began()
    await harness.committed(0, 1)
    await harness.committed(1, 2)

    assert harness.consumer.committed[0] == 1  # before the stuck record, not past it
    stuck.let_go()
    await harness.committed(0, 4)
    assert harness.consumer.passed_unfinished == []


async def test_a_failing_record_is_retried_before_the_next_of_its_partition_runs(
    harness: Harness,
) -> None:
    failures = 3

    async def flaky() -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise TransientError("cassandra does not answer")

    harness.steps[b"flaky"] = flaky
    await harness.publish(0, b"flaky", b"next")
    await harness.publish(1, b"other")

    await harness.until(lambda: harness.done[0] == [b"flaky", b"next"])

    assert [a for a in harness.attempts if a != b"other"] == [b"flaky"] * 4 + [b"next"]
    assert harness.done[1] == [b"other"]
    await harness.committed(0, 2)
    assert harness.consumer.passed_unfinished == []


async def test_a_revoked_partition_finishes_its_record_in_hand_and_leaves_the_rest() -> None:
    """A member joins: the partition it takes is drained by its owner (the services' revocation
    hook), which finishes the record it is handling, handles none of the records queued behind
    it, and commits just past the one it finished, so the new owner reads the rest."""
    log = InProcLog(partitions=PARTITIONS)
    drained: list[set[int]] = []
    draining = asyncio.Event()

    async def on_revoked(partitions: set[int]) -> None:
        drained.append(partitions)
        draining.set()
        await harness.loop.drain(partitions)

    harness = Harness(log, on_revoked)
    in_hand = harness.steps[b"in-hand"] = Held()
    await harness.publish(1, b"in-hand", b"queued-1", b"queued-2")
    async with _running(harness):
        await in_hand.began()
        newcomer = log.consumer("t", "g")
        await newcomer.start()  # the group gives it partition 1 once its owner lets go
        taken = asyncio.create_task(newcomer.poll(10, timeout_ms=int(DEADLINE_S * 1000)))
        await asyncio.wait_for(draining.wait(), DEADLINE_S)
        assert not taken.done()  # the record in hand holds the partition
        in_hand.let_go()
        records = await asyncio.wait_for(taken, DEADLINE_S)
        assert drained == [{1}]
        await newcomer.stop()

    assert harness.done[1] == [b"in-hand"]
    assert [r.value for r in records] == [b"queued-1", b"queued-2"]
    assert harness.consumer.passed_unfinished == []


async def test_a_loop_holding_its_bound_of_records_polls_again_once_they_finish() -> None:
    """The bound on records held: a slow record with records queued behind it holds up polling
    (the consumer port cannot pause one partition), and polling resumes as they finish."""
    async with _running(Harness(InProcLog(partitions=PARTITIONS), max_held=2)) as harness:
        stuck = harness.steps[b"stuck"] = Held()
        await harness.publish(0, b"stuck", b"a1", b"a2")
        await stuck.began()
        await harness.publish(1, b"b0")

        stuck.let_go()
        await harness.until(lambda: harness.done == {0: [b"stuck", b"a1", b"a2"], 1: [b"b0"]})
