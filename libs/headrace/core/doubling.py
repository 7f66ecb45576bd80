"""Waiting out a failure: delays that double from a first delay up to a ceiling, the pace of
every loop that retries a dependency (consume loops, background loops, connecting)."""

from __future__ import annotations

import asyncio


class DoublingDelay:
    def __init__(self, first_s: float, max_s: float) -> None:
        self._max_s = max_s
        self.delay_s = first_s  # the next wait

    def take(self) -> float:
        """The next wait, doubling the one after it (up to the ceiling)."""
        delay, self.delay_s = self.delay_s, min(self.delay_s * 2, self._max_s)
        return delay

    async def sleep(self) -> None:
        await asyncio.sleep(self.take())
