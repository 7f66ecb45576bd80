"""The runner's flow controls driven through its record handler (runner_harness): what the
decisions of `headrace.flow` become on the `schedule` topic and in the stores, including across
a redelivered record and a partition revoked and assigned again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from runner_harness import BEGAN, RunnerHarness

from headrace.messages.records import (
    BatchDue,
    CancelRun,
    CancelTimer,
    Enqueue,
    EventAccepted,
    StartRun,
)
from headrace.messages.state import FunctionRecord, RunState

HOUR = 3_600_000


@pytest.fixture
async def harness() -> AsyncIterator[RunnerHarness]:
    async with RunnerHarness.owning_partition_0() as h:
        yield h


async def _sync(h: RunnerHarness, **config: Any) -> None:
    config.setdefault("triggers", [{"event": "shop/order"}])
    await h.stores.put_function(
        FunctionRecord(fn_id="fn", account_id="acct", app_id="app", name="fn", config=config)
    )


async def _event(h: RunnerHarness, event_id: str, **data: Any) -> None:
    await h.event(h.clock.now_ms(), name="shop/order", event_id=event_id, **data)


def _starts(h: RunnerHarness) -> list[list[str]]:
    return [i.event_ids for i in h.scheduled() if isinstance(i, StartRun)]


def _dues(h: RunnerHarness) -> list[Enqueue]:
    return [i for i in h.published() if isinstance(i, Enqueue) and isinstance(i.item, BatchDue)]


async def _fire(h: RunnerHarness, timer: Enqueue) -> None:
    """The scheduler's wheel delivering a due timer back to the runner."""
    assert isinstance(timer.item, BatchDue)
    await h.handle(timer.item)


async def test_an_idempotency_key_starts_a_run_again_after_24_hours(
    harness: RunnerHarness,
) -> None:
    await _sync(harness, idempotency="event.data.order")
    await _event(harness, "p1", order="A")
    await harness.clock.advance(23 * HOUR)
    await _event(harness, "p2", order="A")
    await harness.clock.advance(2 * HOUR)
    await _event(harness, "p3", order="A")

    assert _starts(harness) == [["p1"], ["p3"]]


async def test_a_rate_limit_drops_an_event_within_its_period_even_when_delivered_again(
    harness: RunnerHarness,
) -> None:
    await _sync(harness, rateLimit={"limit": 1, "period": "1m"})
    await _event(harness, "e1")
    await harness.clock.advance(1_000)
    await _event(harness, "e2")
    await harness.handle(EventAccepted(event=(await harness.stores.get_event("e2"))), offset=1)
    await harness.clock.advance(60_000)
    await _event(harness, "e3")

    assert _starts(harness) == [["e1"], ["e3"]]


async def test_a_rate_limit_window_outlives_a_revocation(harness: RunnerHarness) -> None:
    await _sync(harness, rateLimit={"limit": 1, "period": "1m"})
    await _event(harness, "e1")
    await harness.runner.on_revoked({0})
    await harness.runner.on_assigned({0})
    await _event(harness, "e2")

    assert _starts(harness) == [["e1"]]


async def test_a_batch_starts_one_run_when_full(harness: RunnerHarness) -> None:
    await _sync(harness, batchEvents={"maxSize": 2, "timeout": "10s"})
    await _event(harness, "e1")
    await _event(harness, "e2")

    assert _starts(harness) == [["e1", "e2"]]
    [due] = _dues(harness)
    assert due.at_ms == BEGAN + 1_000 + 10_000
    await _fire(harness, due)  # the full batch's timer finds nothing to start
    assert len(_starts(harness)) == 1


async def test_a_batch_due_after_a_revocation_starts_with_the_events_it_held(
    harness: RunnerHarness,
) -> None:
    await _sync(harness, batchEvents={"maxSize": 10, "timeout": "10s"})
    await _event(harness, "e1")
    await _event(harness, "e2")
    await harness.runner.on_revoked({0})
    await harness.runner.on_assigned({0})

    [due] = _dues(harness)
    await _fire(harness, due)

    assert _starts(harness) == [["e1", "e2"]]
    [start] = [i for i in harness.scheduled() if isinstance(i, StartRun)]
    assert start.run_id == due.item.batch_id


async def test_a_debounce_replaces_its_timer_and_starts_with_the_last_event(
    harness: RunnerHarness,
) -> None:
    await _sync(harness, debounce={"period": "5s"})
    await _event(harness, "e1")
    await harness.clock.advance(2_000)
    await _event(harness, "e2")

    first, second = _dues(harness)
    assert second.at_ms == BEGAN + 1_000 + 2_000 + 5_000
    cancels = [i.timer_id for i in harness.published() if isinstance(i, CancelTimer)]
    assert cancels == [first.timer_id]
    await _fire(harness, first)  # cancelled too late: stale
    assert _starts(harness) == []
    await _fire(harness, second)
    assert _starts(harness) == [["e2"]]


async def test_a_singleton_in_skip_mode_starts_nothing_while_its_run_goes_on(
    harness: RunnerHarness,
) -> None:
    await _sync(harness, singleton={"mode": "skip"})
    await _event(harness, "e1")
    await _event(harness, "e2")  # the first run is not in the run store yet: running
    assert _starts(harness) == [["e1"]]

    [first] = [i for i in harness.scheduled() if isinstance(i, StartRun)]
    await harness.stores.create_run(
        RunState(
            run_id=first.run_id, account_id="acct", fn_id="fn", app_id="app", status="completed"
        )
    )
    await _event(harness, "e3")
    assert _starts(harness) == [["e1"], ["e3"]]


async def test_a_singleton_in_cancel_mode_cancels_its_run_before_starting_the_next(
    harness: RunnerHarness,
) -> None:
    await _sync(harness, singleton={"mode": "cancel"})
    await _event(harness, "e1")
    await _event(harness, "e2")

    items = [i for i in harness.scheduled() if isinstance(i, StartRun | CancelRun)]
    first, cancel, second = items
    assert isinstance(cancel, CancelRun) and cancel.run_id == first.run_id
    assert isinstance(second, StartRun) and second.event_ids == ["e2"]
