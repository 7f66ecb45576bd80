"""The runner's matching of events to waits, driven through its record handler: a wait takes
only events received since it began, including those the runner handled before the wait's
pause was announced (docs/waits.md)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from headrace.services.runner.service import Runner

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import FakeClock
from headrace.messages.model import Event, Pause
from headrace.messages.records import (
    EVENTS_CODEC,
    SCHEDULE_CODEC,
    Enqueue,
    EventAccepted,
    EventsRecord,
    PauseCreated,
    Resume,
)
from headrace.messages.topics import Topics
from headrace.ports.log import LogRecord

TOPICS = Topics()
BEGAN = 1_700_000_000_000


class Harness:
    def __init__(self) -> None:
        self.log = InProcLog(partitions=1)
        self.stores = SqliteStores(Database(":memory:"))
        self.runner = Runner(self.log, TOPICS, self.stores, FakeClock(BEGAN + 1_000))
        self._offsets = itertools.count()

    async def handle(self, item: EventsRecord) -> None:
        value = EVENTS_CODEC.encode(item)
        offset = next(self._offsets)
        await self.runner.handle(LogRecord(TOPICS.events, 0, offset, "acct", value))

    async def event(self, received_ms: int, account: str = "acct", **data: Any) -> None:
        payload = {"name": "approved", "data": data}
        event_id = f"e{received_ms}"
        event = Event(
            internal_id=event_id,
            account_id=account,
            name="approved",
            payload=payload,
            received_ms=received_ms,
        )
        await self.handle(EventAccepted(event=event))

    def scheduled(self) -> list[Any]:
        items = [SCHEDULE_CODEC.decode(r.value) for r in self.log.newest(TOPICS.schedule, 10)]
        return [i.item for i in items if isinstance(i, Enqueue)]

    def resumed_with(self) -> list[Any]:
        return [i.memo["data"] for i in self.scheduled() if isinstance(i, Resume)]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.runner.on_assigned({0})
    yield h
    await h.stores.close()


def _wait(
    expression: str | None = None, account: str = "acct", kind: str = "wait", run: str = "run"
) -> Pause:
    return Pause(
        pause_id=f"{run}:w",
        account_id=account,
        run_id=run,
        fn_id="fn",
        kind=kind,
        event_name="approved",
        expression=expression,
        step_hash="w",
        expires_ms=BEGAN + 60_000,
        since_ms=BEGAN,
    )


async def test_an_event_handled_before_the_announcement_but_after_the_wait_began_resumes_it(
    harness: Harness,
) -> None:
    await harness.event(BEGAN - 5, who="before the wait began")
    await harness.event(BEGAN + 5, who="ann", order=1)
    await harness.event(BEGAN + 6, who="bob", order=2)

    await harness.handle(PauseCreated(pause=_wait("async.data.order == 2")))

    assert harness.resumed_with() == [{"who": "bob", "order": 2}]


async def test_an_event_from_before_the_wait_began_never_resumes_it(harness: Harness) -> None:
    await harness.handle(PauseCreated(pause=_wait()))
    assert harness.resumed_with() == []

    # As a restarted runner re-reads events it had not committed, older than the wait.
    await harness.event(BEGAN - 1, who="before the wait began")
    assert harness.resumed_with() == []

    await harness.event(BEGAN + 1, who="ann")
    assert harness.resumed_with() == [{"who": "ann"}]


@pytest.mark.parametrize("kind", ["wait", "cancel"])
async def test_an_event_matches_the_waits_and_cancellations_of_its_own_account_only(
    harness: Harness, kind: str
) -> None:
    # Two tenants deploy the same app: their runs wait for the same event name and expression.
    await harness.handle(PauseCreated(pause=_wait("async.data.order == 1", "acme", kind, "a")))
    await harness.handle(PauseCreated(pause=_wait("async.data.order == 1", "globex", kind, "g")))

    await harness.event(BEGAN + 1, account="globex", who="globex", order=1)

    assert [(type(i).__name__, i.account_id, i.run_id) for i in harness.scheduled()] == [
        ("Resume" if kind == "wait" else "CancelRun", "globex", "g")
    ]
