"""The scheduler's record handler on the in-process log, SQLite stores and a fake clock: work due
now goes to `work` at once, keyed by run (an account's runs over every partition), a timer fires
at its time and never before, once however often its record is repeated, not at all once
cancelled, and from the store after a hand-over; cron ticks go back to the runner on `events`."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

from headrace.services.scheduler.service import Scheduler

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import FakeClock
from headrace.messages.records import (
    EVENTS_CODEC,
    SCHEDULE_CODEC,
    WORK_CODEC,
    CancelTimer,
    CronDue,
    Enqueue,
    Resume,
    ScheduleRecord,
)
from headrace.messages.topics import Topics
from headrace.ports.log import LogRecord
from headrace.testing.dev import eventually

PARTITION = 0


class Harness:
    """A scheduler owning partition 0, its wheel running, and readers of what it publishes."""

    def __init__(self, stores: SqliteStores, clock: FakeClock, log: InProcLog) -> None:
        self.topics = Topics()
        self.log = log
        self.scheduler = Scheduler(log, self.topics, stores, clock, lease_ms=60_000)
        self._offset = 0

    async def handle(self, record: ScheduleRecord) -> None:
        self._offset += 1
        value = SCHEDULE_CODEC.encode(record)
        await self.scheduler.handle(
            LogRecord(self.topics.schedule, PARTITION, self._offset, "acct", value)
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await self.scheduler.on_assigned({PARTITION})
        wheel = asyncio.create_task(self.scheduler.wheel.run())
        try:
            yield
        finally:
            wheel.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wheel
            await self.scheduler.on_revoked({PARTITION})


def _resume(run: str) -> Resume:
    return Resume(account_id="acct", run_id=run, step_hash="h", reason="timer")


def _work(h: Harness) -> list[str]:
    """The run ids of every `work` record published so far, sorted: the records of different
    runs go to different partitions, which have no order between them."""
    return sorted(WORK_CODEC.decode(r.value).run_id for r in h.log.newest(h.topics.work, 1000))


def _events(h: Harness) -> list[object]:
    return [EVENTS_CODEC.decode(r.value) for r in h.log.newest(h.topics.events, 1000)]


async def _work_becomes(h: Harness, expected: list[str]) -> None:
    """`work` holds exactly `expected` once the scheduler has caught up with the clock (its
    stores run on a thread, so this polls). A timer that should not fire is checked beside one
    due just before it: the wheel fires due timers in order in one pass, so once the earlier
    one is out, the later one would be too."""

    async def caught_up() -> bool:
        return len(_work(h)) >= len(expected)

    await eventually(caught_up, timeout=5, what=f"work to hold {expected}")
    assert _work(h) == sorted(expected)


async def test_work_due_now_goes_to_work_at_once(stores: SqliteStores) -> None:
    h = Harness(stores, FakeClock(), InProcLog(partitions=4))
    async with h.running():
        await h.handle(Enqueue(timer_id="t1", item=_resume("r1")))
        assert _work(h) == ["r1"]


async def test_work_goes_to_the_partition_of_its_run(stores: SqliteStores) -> None:
    """One account's runs spread over every `work` partition, so over every executor; each
    run's records stay on one partition, in order."""
    h = Harness(stores, FakeClock(), InProcLog(partitions=4))
    async with h.running():
        for run in range(40):
            for record in range(3):
                await h.handle(Enqueue(timer_id=f"t{run}.{record}", item=_resume(f"r{run}")))
    partitions: defaultdict[str, set[int]] = defaultdict(set)
    for published in h.log.newest(h.topics.work, 1000):
        partitions[WORK_CODEC.decode(published.value).run_id].add(published.partition)
    assert len(partitions) == 40
    assert all(len(held) == 1 for held in partitions.values())
    assert set().union(*partitions.values()) == {0, 1, 2, 3}


async def test_a_timer_fires_at_its_time_and_never_before(stores: SqliteStores) -> None:
    clock = FakeClock()
    h = Harness(stores, clock, InProcLog(partitions=4))
    async with h.running():
        now = clock.now_ms()
        await h.handle(Enqueue(timer_id="t0", item=_resume("r0"), at_ms=now + 4_999))
        await h.handle(Enqueue(timer_id="t1", item=_resume("r1"), at_ms=now + 5_000))
        await clock.advance(4_999)
        await _work_becomes(h, ["r0"])
        await clock.advance(1)
        await _work_becomes(h, ["r0", "r1"])


async def test_a_timer_whose_record_is_repeated_fires_once(stores: SqliteStores) -> None:
    clock = FakeClock()
    h = Harness(stores, clock, InProcLog(partitions=4))
    async with h.running():
        now = clock.now_ms()
        for _ in range(3):
            await h.handle(Enqueue(timer_id="t1", item=_resume("r1"), at_ms=now + 1_000))
        await h.handle(Enqueue(timer_id="t2", item=_resume("r2"), at_ms=now + 2_000))
        await clock.advance(2_000)
        await _work_becomes(h, ["r1", "r2"])


async def test_a_cancelled_timer_never_fires(stores: SqliteStores) -> None:
    clock = FakeClock()
    h = Harness(stores, clock, InProcLog(partitions=4))
    async with h.running():
        at = clock.now_ms() + 1_000
        await h.handle(Enqueue(timer_id="t1", item=_resume("r1"), at_ms=at))
        await h.handle(Enqueue(timer_id="t2", item=_resume("r2"), at_ms=at))
        await h.handle(CancelTimer(account_id="acct", timer_id="t1"))
        await clock.advance(2_000)
        await _work_becomes(h, ["r2"])


async def test_a_timer_far_ahead_fires_from_the_store_after_a_hand_over(
    stores: SqliteStores,
) -> None:
    """A timer beyond the wheel's window lives only in the store; the next owner of the
    partition loads it, and it fires once, on time."""
    clock = FakeClock()
    log = InProcLog(partitions=4)
    first = Harness(stores, clock, log)
    at = clock.now_ms() + 10 * 60_000
    async with first.running():
        await first.handle(Enqueue(timer_id="t0", item=_resume("r0"), at_ms=at - 1))
        await first.handle(Enqueue(timer_id="t1", item=_resume("r1"), at_ms=at))
    second = Harness(stores, clock, log)
    async with second.running():
        await clock.advance(10 * 60_000 - 1)
        await _work_becomes(second, ["r0"])
        await clock.advance(1)
        await _work_becomes(second, ["r0", "r1"])


async def test_a_cron_tick_goes_back_to_the_runner_on_events(stores: SqliteStores) -> None:
    clock = FakeClock()
    h = Harness(stores, clock, InProcLog(partitions=4))
    tick = CronDue(
        account_id="acct",
        fn_id="f",
        cron="* * * * *",
        tick_ms=clock.now_ms() + 60_000,
        fire_ms=clock.now_ms() + 60_000,
    )
    async with h.running():
        await h.handle(Enqueue(timer_id="cron:f", item=tick, at_ms=tick.fire_ms))
        await clock.advance(60_000)

        async def published() -> bool:
            return bool(_events(h))

        await eventually(published, timeout=5, what="the tick on events")
        assert _events(h) == [tick]
        assert _work(h) == []
