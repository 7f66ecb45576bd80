"""What a service attaches to: the one composition root of both modes.

Each service package's `wire(host, log, stores)` builds its handlers and attaches them here (its
consume loops, background tasks, routes, what to do at stop). A distributed-mode process
(`runtime/process.py`) hosts one service; `headrace dev` (`dev/server.py`) hosts all four on the
embedded adapters. Both give the services the one settings model (runtime/settings.py), so the
services are built one way only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.routing import BaseRoute

from headrace.core.clock import Clock
from headrace.messages.topics import Topics
from headrace.ports.log import Log
from headrace.runtime.loops import Loops
from headrace.runtime.settings import Settings


class Host(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def topics(self) -> Topics: ...

    def loops(self, log_port: Log) -> Loops:
        """The host's consume loops (started after every service is wired)."""
        ...

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Keep `run` running in the background (restarted when it raises) until stop."""
        ...

    def add_routes(self, routes: list[BaseRoute]) -> None: ...

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` at stop, after the loops have stopped."""
        ...
