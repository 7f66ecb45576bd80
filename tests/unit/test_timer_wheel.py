"""The scheduler's timer wheel on SQLite stores and a fake clock: refilling a partition's window
reads the store beside the firing, so a timer due during a slow read fires on time, and a timer
fired or cancelled while the read was under way is not taken back from what it returned."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from headrace.services.scheduler.wheel import TimerWheel

from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import FakeClock
from headrace.messages.state import Timer
from headrace.testing.dev import eventually

WINDOW_MS = 60_000
PARTITION = 0


class SlowReads:
    """The real stores, whose reads of due timers, once `hold` is set, return what they read
    only when `released` is set (a Cassandra read under load)."""

    def __init__(self, inner: SqliteStores) -> None:
        self._inner = inner
        self.hold = False
        self.holding = asyncio.Event()
        self.released = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def timers_due(self, partition: int, until_ms: int) -> list[Timer]:
        due = await self._inner.timers_due(partition, until_ms)
        if self.hold:
            self.holding.set()
            await self.released.wait()
        return due


class Wheel:
    def __init__(self, stores: SqliteStores, clock: FakeClock) -> None:
        self.store = SlowReads(stores)
        self.clock = clock
        self.fired: list[str] = []
        self.wheel = TimerWheel(self.store, clock, self._fire, window_ms=WINDOW_MS)  # type: ignore[arg-type]

    async def _fire(self, timer: Timer) -> None:
        self.fired.append(timer.timer_id)

    async def add(self, timer_id: str, in_ms: int) -> None:
        at = self.clock.now_ms() + in_ms
        await self.wheel.add(Timer(timer_id=timer_id, partition=PARTITION, fire_ms=at, record=b""))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await self.wheel.own({PARTITION})
        task = asyncio.create_task(self.wheel.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def fired_becomes(self, expected: list[str]) -> None:
        async def caught_up() -> bool:
            return len(self.fired) >= len(expected)

        await eventually(caught_up, timeout=5, what=f"timers {expected} to fire")
        assert self.fired == expected


async def test_a_timer_due_during_a_slow_refill_fires_on_time_and_once(
    stores: SqliteStores,
) -> None:
    w = Wheel(stores, FakeClock())
    async with w.running():
        await w.add("soon", 40_000)  # inside the first window
        await w.add("later", 100_000)  # beyond it: the refill reads it
        await w.add("cancelled", 45_000)
        w.store.hold = True
        await w.clock.advance(31_000)  # half the window left: the refill reads, and is held
        await asyncio.wait_for(w.store.holding.wait(), 5)
        # The read has returned `soon` and `cancelled`, and is held up; meanwhile `soon` falls
        # due, and `cancelled` is cancelled.
        await w.wheel.cancel(PARTITION, "cancelled")
        await w.clock.advance(9_000)
        await w.fired_becomes(["soon"])
        w.store.hold = False
        w.store.released.set()
        await w.clock.advance(60_000)
        await w.fired_becomes(["soon", "later"])
        await w.clock.advance(60_000)
        await asyncio.sleep(0.2)
        assert w.fired == ["soon", "later"]
