"""Background loops are started again after they raise, and stop when cancelled."""

from __future__ import annotations

import asyncio

import pytest

from headrace.runtime.supervise import keep_running, spawn


async def test_a_loop_that_raises_is_started_again_until_it_returns() -> None:
    starts = 0

    async def flaky() -> None:
        nonlocal starts
        starts += 1
        if starts < 3:
            raise RuntimeError("the store went away")

    await asyncio.wait_for(keep_running("flaky", flaky, first_delay_s=0.001), 5)
    assert starts == 3


async def test_a_spawned_loop_stops_when_cancelled() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = spawn("forever", forever)
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
