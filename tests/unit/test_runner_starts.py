"""The runner starting runs, driven through its record handler (runner_harness): an event starts
one run of each function whose trigger it matches, one run however often its record is
delivered, none past a function's idempotency key, and a run with `cancelOn` is cancelled by the
matching event of its own account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from runner_harness import BEGAN, RunnerHarness

from headrace.messages.records import CancelRun, EventAccepted, StartRun
from headrace.messages.state import FunctionRecord


@pytest.fixture
async def harness() -> AsyncIterator[RunnerHarness]:
    async with RunnerHarness.owning_partition_0() as h:
        yield h


async def _sync(h: RunnerHarness, fn_id: str, **config: Any) -> None:
    await h.stores.put_function(
        FunctionRecord(fn_id=fn_id, account_id="acct", app_id="app", name=fn_id, config=config)
    )


def _starts(h: RunnerHarness) -> list[tuple[str, list[str]]]:
    return [(i.fn_id, i.event_ids) for i in h.scheduled() if isinstance(i, StartRun)]


async def test_an_event_starts_one_run_of_each_function_whose_trigger_it_matches(
    harness: RunnerHarness,
) -> None:
    await _sync(harness, "any-order", triggers=[{"event": "shop/*"}])
    await _sync(
        harness,
        "big-order",
        triggers=[{"event": "shop/order", "expression": "event.data.total > 100"}],
    )
    await _sync(harness, "refunds", triggers=[{"event": "shop/refund"}])

    await harness.event(BEGAN + 1, name="shop/order", event_id="small", total=5)
    await harness.event(BEGAN + 2, name="shop/order", event_id="big", total=500)

    assert sorted(_starts(harness)) == [
        ("any-order", ["big"]),
        ("any-order", ["small"]),
        ("big-order", ["big"]),
    ]


async def test_an_event_delivered_again_starts_no_second_run(harness: RunnerHarness) -> None:
    """A runner that crashed before committing handles the record again (same offset); so does
    its successor. The StartRun published again carries the same run id, so the executor
    creates one run."""
    await _sync(harness, "fn", triggers=[{"event": "shop/order"}])
    event = await harness.event(BEGAN + 1, name="shop/order", event_id="e1")
    await harness.handle(EventAccepted(event=event), offset=0)
    runs = {i.run_id for i in harness.scheduled() if isinstance(i, StartRun)}
    assert len(runs) == 1


async def test_an_idempotency_key_lets_the_first_event_of_a_key_start_a_run(
    harness: RunnerHarness,
) -> None:
    await _sync(harness, "charge", triggers=[{"event": "pay"}], idempotency="event.data.order")
    await harness.event(BEGAN + 1, name="pay", event_id="p1", order="A")
    await harness.event(BEGAN + 2, name="pay", event_id="p2", order="A")
    await harness.event(BEGAN + 3, name="pay", event_id="p3", order="B")

    assert _starts(harness) == [("charge", ["p1"]), ("charge", ["p3"])]


async def test_cancel_on_cancels_the_run_on_the_matching_event_of_its_own_account(
    harness: RunnerHarness,
) -> None:
    await _sync(
        harness,
        "onboard",
        triggers=[{"event": "user/signup"}],
        cancel=[{"event": "user/deleted", "if": "async.data.user == event.data.user"}],
    )
    await harness.event(BEGAN + 1, name="user/signup", event_id="s1", user="ann")
    [run_id] = [i.run_id for i in harness.scheduled() if isinstance(i, StartRun)]

    await harness.event(BEGAN + 2, name="user/deleted", event_id="d0", user="bob")
    await harness.event(BEGAN + 3, account="other", name="user/deleted", event_id="d1", user="ann")
    assert [i for i in harness.scheduled() if isinstance(i, CancelRun)] == []

    await harness.event(BEGAN + 4, name="user/deleted", event_id="d2", user="ann")
    assert [i.run_id for i in harness.scheduled() if isinstance(i, CancelRun)] == [run_id]
