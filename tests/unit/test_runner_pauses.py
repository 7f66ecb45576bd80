"""The runner's matching of events to waits, driven through its record handler: a wait takes
only events received since it began, including those the runner handled before the wait's
pause was announced (docs/waits.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from headrace.services.runner.pauses import Pauses
from runner_harness import BEGAN, RunnerHarness

from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import FakeClock
from headrace.messages.model import Event, Pause
from headrace.messages.records import Deliverable, PauseCreated, Resume


class Harness(RunnerHarness):
    def resumed_with(self) -> list[Any]:
        return [i.memo["data"] for i in self.scheduled() if isinstance(i, Resume)]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with Harness.owning_partition_0() as h:
        yield h


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


async def test_a_pause_another_partition_settles_meanwhile_is_passed_over(
    stores: SqliteStores,
) -> None:
    """The runner handles its partitions at once (runtime/consume.py): while an event resumes
    its own account's wait, an event of another partition may settle the other account's wait
    that matched the same event."""

    def event(account: str) -> Event:
        payload = {"name": "approved", "data": {"order": 1}}
        return Event(
            internal_id=f"e-{account}",
            account_id=account,
            name="approved",
            payload=payload,
            received_ms=BEGAN + 1,
        )

    scheduled: list[str] = []

    async def schedule(item: Deliverable, timer_id: str, at_ms: int, key: str) -> None:
        scheduled.append(item.account_id)
        if item.account_id == "acme":
            await pauses.resolve(event("globex"))  # the other partition, meanwhile

    pauses = Pauses(stores, FakeClock(BEGAN + 1_000), schedule)
    pauses.remember(_wait("async.data.order == 1", "acme", "wait", "a"), 0)
    pauses.remember(_wait("async.data.order == 1", "globex", "wait", "g"), 1)

    await pauses.resolve(event("acme"))

    assert scheduled == ["acme", "globex"]
