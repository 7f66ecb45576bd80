"""`headrace dev`'s adapters: the SQLite stores and the in-process log, in one SQLite file in the
state directory (in memory without one)."""

from __future__ import annotations

from dataclasses import dataclass

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import Clock
from headrace.obs.records import ObservedLog
from headrace.ports.log import Log
from headrace.runtime.settings import Settings


@dataclass(frozen=True)
class Embedded:
    db: Database
    stores: SqliteStores
    # Kept bare beside its observed wrapper `log` for /dev/intake and /dev/dead-letters: a
    # record produced there comes from outside, as from a Kafka producer (no trace context).
    bare_log: InProcLog
    log: Log

    @classmethod
    def open(cls, settings: Settings, clock: Clock) -> Embedded:
        path = ":memory:"
        state_dir = settings.embedded.state_dir
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            path = str(state_dir / "headrace.db")
        db = Database(path)
        stores = SqliteStores(db, clock=clock, retention_s=settings.retention_s)
        bare_log = InProcLog(settings.partitions, db, clock)
        return cls(db, stores, bare_log, ObservedLog(bare_log))

    async def close(self) -> None:
        await self.log.close()
        self.db.close()
