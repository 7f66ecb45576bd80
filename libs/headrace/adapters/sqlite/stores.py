"""The stores on SQLite (see headrace.ports.stores for the guarantees, and each table module
here for how it keeps them).

Retention: runs, events and their links carry `expires_ms`, set on the injected clock at each
write as Cassandra sets its TTLs (adapters/cassandra/runs.py): an open run the retention plus
the longest a run may stay open, an ended run and an event the retention. `sweep` deletes what
has expired (a run with its memos and history) and the keys past their own expiry; `headrace
dev` calls it every minute (dev/retention.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from headrace.adapters.sqlite.apps import AppTables
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.events import EventTables
from headrace.adapters.sqlite.flow import FlowTables
from headrace.adapters.sqlite.keys import KeyTables
from headrace.adapters.sqlite.pauses import BatchTables, PauseTables
from headrace.adapters.sqlite.runs import RunTables
from headrace.adapters.sqlite.schema import create_schema
from headrace.adapters.sqlite.timers import TimerTables
from headrace.core.clock import Clock, SystemClock
from headrace.core.retention import DEFAULT_RETENTION_S
from headrace.messages.state import RunState

_run = msgspec.msgpack.Decoder(RunState)


class SqliteStores(
    AppTables,
    RunTables,
    EventTables,
    KeyTables,
    TimerTables,
    PauseTables,
    BatchTables,
    FlowTables,
):
    """All the stores in one SQLite file (":memory:" for a throwaway run); `retention_s` as for
    CassandraStores, counted on `clock`."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock | None = None,
        retention_s: int = DEFAULT_RETENTION_S,
    ) -> None:
        clock = clock or SystemClock()
        AppTables.__init__(self, db)
        RunTables.__init__(self, db, clock, retention_s)
        EventTables.__init__(self, db, clock, retention_s)
        KeyTables.__init__(self, db)
        TimerTables.__init__(self, db)
        PauseTables.__init__(self, db)
        BatchTables.__init__(self, db)
        FlowTables.__init__(self, db)
        db.run_sync(create_schema)
        db.run_sync(self._date_legacy)

    def _date_legacy(self, conn: Any) -> None:
        """Rows written before retention existed expire as if written now."""
        expires = self._clock.now_ms() + self._retention_ms
        for table in ("event_receipts", "event_runs"):
            conn.execute(f"UPDATE {table} SET expires_ms = ? WHERE expires_ms IS NULL", (expires,))
        legacy = conn.execute("SELECT run_id, body FROM runs WHERE expires_ms IS NULL").fetchall()
        conn.executemany(
            "UPDATE runs SET expires_ms = ? WHERE run_id = ?",
            [(self._run_expires_ms(_run.decode(body)), run_id) for run_id, body in legacy],
        )

    async def sweep(self) -> dict[str, int]:
        """Delete every row that has expired by the clock; how many of each kind."""
        now = self._clock.now_ms()
        expired_runs = "SELECT run_id FROM runs WHERE expires_ms <= ?"

        def apply(conn: Any) -> dict[str, int]:
            def delete(sql: str) -> int:
                return int(conn.execute(sql, (now,)).rowcount)

            return {
                "memos": delete(f"DELETE FROM memos WHERE run_id IN ({expired_runs})"),
                "history": delete(f"DELETE FROM history WHERE run_id IN ({expired_runs})"),
                "runs": delete("DELETE FROM runs WHERE expires_ms <= ?"),
                "events": delete("DELETE FROM event_receipts WHERE expires_ms <= ?"),
                "event_links": delete("DELETE FROM event_runs WHERE expires_ms <= ?"),
                "keys": delete("DELETE FROM keys WHERE expires_ms <= ?"),
            }

        return await self._db.atomically(apply)

    async def close(self) -> None:
        """The database belongs to whoever opened it."""
