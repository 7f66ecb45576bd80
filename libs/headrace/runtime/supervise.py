"""Background loops (the timer wheel, flow control, the syncer) that outlive their failures.

A loop that raises, because Cassandra or Kafka is away for instance, is logged and started
again after a delay that doubles up to `max_delay_s`, instead of dying silently and leaving
the process alive and ready but no longer firing timers or admitting work. Each loop keeps
its state on its object, so starting `run()` again resumes it where it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from headrace.core.doubling import DoublingDelay
from headrace.runtime.failures import Disposition, classify

log = structlog.get_logger(__name__)


async def keep_running(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    first_delay_s: float = 0.1,
    max_delay_s: float = 5.0,
) -> None:
    """Run `run()` until cancelled, starting it again whenever it raises."""
    backoff = DoublingDelay(first_delay_s, max_delay_s)
    while True:
        try:
            await run()
            return
        except Exception as err:
            if classify(err) is Disposition.RETRY:
                log.warning("background loop waits for a dependency", loop=name, error=repr(err))
            else:
                log.exception("background loop failed; restarting", loop=name)
            await backoff.sleep()


def spawn(name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    return asyncio.create_task(keep_running(name, run), name=name)
