"""The runner driven through its record handler, on the in-process log, SQLite stores and a fake
clock: records go in as the `events` topic would deliver them, and what the runner schedules is
read back from the `schedule` topic."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any, Self

from headrace.services.runner.service import Runner

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import FakeClock
from headrace.messages.model import Event
from headrace.messages.records import (
    EVENTS_CODEC,
    SCHEDULE_CODEC,
    Enqueue,
    EventAccepted,
    EventsRecord,
    ScheduleRecord,
)
from headrace.messages.topics import Topics
from headrace.ports.log import LogRecord

TOPICS = Topics()
BEGAN = 1_700_000_000_000


class RunnerHarness:
    def __init__(self) -> None:
        self.log = InProcLog(partitions=1)
        self.stores = SqliteStores(Database(":memory:"))
        self.clock = FakeClock(BEGAN + 1_000)
        self.runner = Runner(self.log, TOPICS, self.stores, self.clock)
        self._offsets = itertools.count()

    @classmethod
    @contextlib.asynccontextmanager
    async def owning_partition_0(cls) -> AsyncIterator[Self]:
        """A harness whose runner owns the one partition, its stores closed after."""
        harness = cls()
        await harness.runner.on_assigned({0})
        try:
            yield harness
        finally:
            await harness.stores.close()

    async def handle(self, item: EventsRecord, offset: int | None = None) -> None:
        """Deliver `item` at the next offset, or at `offset` (a record delivered again)."""
        value = EVENTS_CODEC.encode(item)
        at = next(self._offsets) if offset is None else offset
        await self.runner.handle(LogRecord(TOPICS.events, 0, at, "acct", value))

    async def event(
        self,
        received_ms: int,
        account: str = "acct",
        name: str = "approved",
        event_id: str | None = None,
        **data: Any,
    ) -> Event:
        event = Event(
            internal_id=event_id or f"e{received_ms}",
            account_id=account,
            name=name,
            payload={"name": name, "data": data},
            received_ms=received_ms,
        )
        await self.handle(EventAccepted(event=event))
        return event

    def published(self) -> list[ScheduleRecord]:
        """Every record published on `schedule` so far, oldest first."""
        records = sorted(self.log.newest(TOPICS.schedule, 1000), key=lambda r: r.offset)
        return [SCHEDULE_CODEC.decode(r.value) for r in records]

    def scheduled(self) -> list[Any]:
        """Every item scheduled so far, oldest first."""
        return [i.item for i in self.published() if isinstance(i, Enqueue)]
