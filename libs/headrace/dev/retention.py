"""`headrace dev`'s retention: every minute on the engine's clock, delete the runs, events and
keys that have expired (SqliteStores.sweep) and the dead letters older than their retention.
Distributed mode needs no sweeper: Cassandra expires the same rows by TTL, Kafka the dead-letter
topic by its `retention.ms`."""

from __future__ import annotations

import structlog

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import Clock

SWEEP_INTERVAL_MS = 60_000

log = structlog.get_logger(__name__)


class Sweeper:
    def __init__(
        self,
        stores: SqliteStores,
        embedded_log: InProcLog,
        dead_letter_topic: str,
        dead_letter_retention_s: int,
        clock: Clock,
    ) -> None:
        self._stores = stores
        self._log = embedded_log
        self._dead_letter_topic = dead_letter_topic
        self._dead_letter_retention_ms = dead_letter_retention_s * 1000
        self._clock = clock

    async def sweep(self) -> None:
        swept = await self._stores.sweep()
        until = self._clock.now_ms() - self._dead_letter_retention_ms
        swept["dead_letters"] = await self._log.expire(self._dead_letter_topic, until)
        if any(swept.values()):
            log.info("expired data deleted", **swept)

    async def run(self) -> None:
        while True:
            await self._clock.sleep_until(self._clock.now_ms() + SWEEP_INTERVAL_MS)
            await self.sweep()
