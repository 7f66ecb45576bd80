"""What the services attach to a host besides routes (runtime/host.py): consume loops, background
tasks and what to do at stop. Both hosts keep them here, a service process (runtime/process.py)
and `headrace dev` (dev/server.py), so both start and stop them in the same order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from headrace.ports.log import Log
from headrace.runtime.loops import Loops
from headrace.runtime.supervise import spawn

log = structlog.get_logger(__name__)


class Attachments:
    def __init__(self, dead_letter_topic: str) -> None:
        self._dead_letter_topic = dead_letter_topic
        self._loops: Loops | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []

    def loops(self, log_port: Log) -> Loops:
        if self._loops is None:
            self._loops = Loops(log_port, self._dead_letter_topic)
        return self._loops

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self.tasks.append(spawn(name, run))

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_stop.append(callback)

    async def start_loops(self) -> None:
        """Once every service is wired."""
        if self._loops is not None:
            await self._loops.start()

    async def stop(self, step_timeout_s: float | None = None) -> None:
        """The loops first (they finish and commit what is in flight), then the tasks, then the
        callbacks. With `step_timeout_s`, a step that hangs is logged and left behind, so that
        it cannot keep the process from exiting."""
        if self._loops is not None:
            await _step("stopping the consume loops", self._loops.stop(), step_timeout_s)
        for task in self.tasks:
            task.cancel()
        gathered = asyncio.gather(*self.tasks, return_exceptions=True)
        await _step("stopping the background tasks", gathered, step_timeout_s)
        for callback in self._on_stop:
            await callback()


async def _step(name: str, work: Awaitable[Any], timeout_s: float | None) -> None:
    if timeout_s is None:
        await work
        return
    try:
        await asyncio.wait_for(work, timeout_s)
    except TimeoutError:
        log.error("shutdown step did not finish; going on", step=name, waited_s=timeout_s)
