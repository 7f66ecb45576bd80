"""What services attach to a host is stopped in one order: loops, then tasks, then callbacks;
a step that hangs holds up a bounded stop only as long as its bound."""

from __future__ import annotations

import asyncio

from headrace.adapters.inproc.log import InProcLog
from headrace.runtime.attachments import Attachments


async def test_the_loops_are_made_once_and_the_tasks_stop_before_the_callbacks() -> None:
    attached = Attachments("dead-letter")
    log = InProcLog(1)
    assert attached.loops(log) is attached.loops(log)
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    seen: list[bool] = []

    async def at_stop() -> None:
        seen.append(all(task.done() for task in attached.tasks))

    attached.spawn("forever", forever)
    attached.on_stop(at_stop)
    await attached.start_loops()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(attached.stop(), 5)
    assert seen == [True]
    await log.close()


async def test_a_bounded_stop_goes_on_past_a_task_that_will_not_stop() -> None:
    attached = Attachments("dead-letter")
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()

    called: list[str] = []

    async def at_stop() -> None:
        called.append("stopped")

    attached.spawn("stubborn", stubborn)
    attached.on_stop(at_stop)
    await asyncio.sleep(0)
    await asyncio.wait_for(attached.stop(step_timeout_s=0.05), 5)
    assert called == ["stopped"]
    release.set()
    await asyncio.gather(*attached.tasks, return_exceptions=True)
