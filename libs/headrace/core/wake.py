"""Sleeping until a deadline on the injected clock or until woken, whichever comes first: how
the scheduler's timer wheel and flow gate idle between due times and new work."""

from __future__ import annotations

import asyncio
import contextlib

from headrace.core.clock import Clock


async def sleep_until_woken(clock: Clock, deadline_ms: int | None, wake: asyncio.Event) -> None:
    """Return once `wake` is set or `deadline_ms` has passed on `clock` (None: no deadline)."""
    waiters = {asyncio.ensure_future(wake.wait())}
    if deadline_ms is not None:
        waiters.add(asyncio.ensure_future(clock.sleep_until(deadline_ms)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
