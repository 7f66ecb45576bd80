"""Timers by partition, read in the order they fire."""

from __future__ import annotations

from headrace.adapters.sqlite.database import Database
from headrace.messages.state import Timer


class TimerTables:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_timer(self, timer: Timer) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO timers VALUES (?, ?, ?, ?)",
            (timer.partition, timer.timer_id, timer.fire_ms, timer.record),
        )

    async def delete_timer(self, partition: int, timer_id: str) -> None:
        await self._db.execute(
            "DELETE FROM timers WHERE partition = ? AND timer_id = ?", (partition, timer_id)
        )

    async def timers_due(self, partition: int, until_ms: int) -> list[Timer]:
        rows = await self._db.execute(
            "SELECT timer_id, fire_ms, record FROM timers WHERE partition = ? AND fire_ms <= ? "
            "ORDER BY fire_ms, timer_id",
            (partition, until_ms),
        )
        return [Timer(timer_id=r[0], partition=partition, fire_ms=r[1], record=r[2]) for r in rows]
