"""`headrace dev`: every service in one process, talking only through the log.

The services are wired by their own packages' `wire`, as in distributed mode, with this server
as their host (runtime/host.py). What is particular to one process is here: one set of embedded
adapters (dev/embedded.py) and one ingest (dev/ingest.py) for all four, the SQLite sweeper, and
starting and stopping them together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from starlette.routing import BaseRoute

from headrace.core.clock import Clock, SystemClock
from headrace.dev.embedded import Embedded
from headrace.dev.ingest import DevIngest
from headrace.dev.retention import Sweeper
from headrace.messages.topics import Topics
from headrace.ports.log import Log
from headrace.runtime.attachments import Attachments
from headrace.runtime.http import HttpServer
from headrace.runtime.loops import Loops
from headrace.runtime.settings import Settings
from headrace.services.executor.main import wire as wire_executor
from headrace.services.ingest.main import wire_intake
from headrace.services.runner.main import wire as wire_runner
from headrace.services.scheduler.main import wire as wire_scheduler

log = structlog.get_logger(__name__)
# How long one step of stopping may take before the server goes on without it.
STOP_STEP_TIMEOUT_S = 30.0


class DevServer:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.topics = Topics()
        self.embedded = Embedded.open(settings, self.clock)
        self.stores, self.log = self.embedded.stores, self.embedded.log
        self.ingest = DevIngest(settings, self.embedded, self.topics, self.clock)
        self.app = self.ingest.app
        self.sweeper = Sweeper(
            self.stores,
            self.embedded.bare_log,
            self.topics.dead_letter,
            settings.dead_letter_retention_s,
            self.clock,
        )
        self._attached = Attachments(self.topics.dead_letter)
        self._http: tuple[HttpServer, asyncio.Task[None]] | None = None

    # --- the host the services attach to (runtime/host.py) ---

    def loops(self, log_port: Log) -> Loops:
        return self._attached.loops(log_port)

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._attached.spawn(name, run)

    def add_routes(self, routes: list[BaseRoute]) -> None:
        self.app.router.routes.extend(routes)

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._attached.on_stop(callback)

    async def start(self) -> None:
        # The services of distributed mode, built as they are there, on the embedded adapters.
        for wire in (wire_runner, wire_scheduler, wire_executor):
            await wire(self, self.log, self.stores)
        wire_intake(self, self.log, self.ingest.parts.intake())
        await self._attached.start_loops()
        self.spawn("retention", self.sweeper.run)
        http = HttpServer.for_app(self.app, self.settings.host, self.settings.port)
        self._http = (http, await http.start())
        self._attached.tasks.append(self._http[1])
        if self.settings.embedded.sdk_urls:
            self.spawn("syncer", self.ingest.syncer.run)
        url = f"http://{self.settings.host}:{self.settings.port}"
        state = self.settings.embedded.state_dir
        log.info("headrace dev is up", url=url, state=str(state) if state else "in memory")
        if self.ingest.dashboard_auth.required:
            log.info(
                "keys are required: the dashboard and /metrics ask for the dashboard token",
                login=f"{url}/dashboard/login",
                token_from=self.ingest.dashboard_login,
            )

    async def stop(self) -> None:
        if self._http is not None:
            await self._http[0].finish(self._http[1])
        # A step that hangs must not keep the process from exiting.
        await self._attached.stop(step_timeout_s=STOP_STEP_TIMEOUT_S)
        await self.embedded.close()
        log.info("headrace dev stopped")
