"""One lock per run, so a run's state is read, changed and written by one task at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class RunLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, run_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(run_id, asyncio.Lock())
        self._users[run_id] = self._users.get(run_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[run_id] -= 1
            if self._users[run_id] == 0:
                del self._users[run_id]
                del self._locks[run_id]

    def contenders(self, run_id: str) -> int:
        """How many tasks hold or wait for the run's lock."""
        return self._users.get(run_id, 0)
