"""The consume loop commits only finished records, and shutdown never waits on a stuck one."""

from __future__ import annotations

import asyncio

from headrace.adapters.inproc.log import InProcLog
from headrace.ports.log import LogRecord
from headrace.runtime.loops import Loops


async def test_a_record_stuck_at_shutdown_stays_uncommitted_and_is_delivered_again() -> None:
    log = InProcLog(partitions=1)
    for value in (b"ok-0", b"stuck", b"ok-2"):
        await log.publish("t", "acct", value)
    handled: list[bytes] = []

    async def handler(record: LogRecord) -> None:
        if record.value == b"stuck":
            await asyncio.Event().wait()
        handled.append(record.value)

    loops = Loops(log)
    loops.add("t", "g", handler, concurrency=10)
    await loops.start()
    for _ in range(100):
        if len(handled) == 2:
            break
        await asyncio.sleep(0.01)
    assert handled == [b"ok-0", b"ok-2"]
    await asyncio.wait_for(loops.stop(), timeout=10)

    again = log.consumer("t", "g")
    await again.start()
    records = await again.poll(10, timeout_ms=100)
    assert [r.value for r in records] == [b"stuck", b"ok-2"]
