"""Time as a port: services read the time and sleep through a Clock so tests never sleep."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """The source of time for every service. Times are milliseconds since the Unix epoch."""

    def now_ms(self) -> int:
        """The current wall-clock time."""
        ...

    async def sleep_until(self, deadline_ms: int) -> None:
        """Return once `now_ms()` has reached `deadline_ms` (at once if it already has)."""
        ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep_until(self, deadline_ms: int) -> None:
        delay = deadline_ms - self.now_ms()
        if delay > 0:
            await asyncio.sleep(delay / 1000)


class FakeClock:
    """A clock that moves only when told to; sleepers wake when `advance` passes their deadline."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms
        self._changed = asyncio.Condition()

    def now_ms(self) -> int:
        return self._now

    async def advance(self, ms: int) -> None:
        async with self._changed:
            self._now += ms
            self._changed.notify_all()
        # Let woken sleepers run before the caller looks at their effects.
        for _ in range(5):
            await asyncio.sleep(0)

    async def sleep_until(self, deadline_ms: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._now >= deadline_ms)
