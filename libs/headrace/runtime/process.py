"""The life of one distributed-mode service process.

It serves `/health` (alive) and `/ready` from the start, so probes work while it connects;
connects to Kafka and Cassandra with backoff until both answer; lets the service wire its loops,
tasks and routes; and on SIGTERM stops taking records, finishes and commits what is in flight,
and closes its connections.

`/ready` is true while the service is wired and both Kafka and Cassandra answered the last probe
(every few seconds). During an outage the process stays up: its consumers retry what they hold
(uncommitted, so nothing is lost) and it turns ready again by itself when both answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from headrace.core.clock import Clock, SystemClock
from headrace.core.doubling import DoublingDelay
from headrace.core.errors import AuthenticationFailed
from headrace.messages.topics import Topics
from headrace.obs.metrics import metrics_route
from headrace.obs.records import ObservedLog
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.attachments import Attachments
from headrace.runtime.connect import Connection
from headrace.runtime.heap import freeze_startup_heap, time_collections
from headrace.runtime.http import HttpServer
from headrace.runtime.loops import Loops
from headrace.runtime.settings import Settings

log = structlog.get_logger(__name__)

Connect = Callable[[Settings], Awaitable[Connection]]
PROBE_INTERVAL_S = 2.0


class ServiceProcess:
    def __init__(self, name: str, settings: Settings, clock: Clock | None = None) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock or SystemClock()
        self.topics = Topics(settings.cluster.topic_prefix)
        self.wired = False
        self.reachable = True
        # Why the process is not connected (yet), for `/ready` and the operator.
        self.connect_error: str | None = None
        self.app = Starlette(routes=[Route("/health", self._health), Route("/ready", self._ready)])
        self.app.router.routes.append(metrics_route())
        self._not_found = self.app.router.default
        self.app.router.default = self._until_wired
        self._attached = Attachments(self.topics.dead_letter)
        self._stopping = asyncio.Event()

    async def _health(self, _: Request) -> Response:
        return JSONResponse({"status": "ok", "service": self.name})

    @property
    def ready(self) -> bool:
        return self.wired and self.reachable

    async def _ready(self, _: Request) -> Response:
        body: dict[str, Any] = {"ready": self.ready, "service": self.name}
        if self.connect_error is not None:
            body["error"] = self.connect_error
        return JSONResponse(body, status_code=200 if self.ready else 503)

    async def _until_wired(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A path no route has yet: until the service's own routes are added (it is still
        connecting), a client is told to come back, not that the path does not exist (an
        Event API client that does not retry a 404 would drop its events)."""
        if self.wired or scope["type"] != "http":
            await self._not_found(scope, receive, send)
            return
        response = JSONResponse(
            {"error": f"the {self.name} service is starting; try again", "status": 503},
            status_code=503,
            headers={"retry-after": "1"},
        )
        await response(scope, receive, send)

    def add_routes(self, routes: list[BaseRoute]) -> None:
        self.app.router.routes.extend(routes)

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._attached.spawn(name, run)

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` at shutdown, after the loops have stopped."""
        self._attached.on_stop(callback)

    def loops(self, log_port: Log) -> Loops:
        return self._attached.loops(log_port)

    async def run(
        self, connect: Connect, wire: Callable[[ServiceProcess, Log, Stores], Awaitable[None]]
    ) -> None:
        time_collections()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        http = HttpServer.for_app(self.app, self.settings.host, self.settings.port)
        http_task = await http.start()
        try:
            connected = await self._connect(connect)
        except AuthenticationFailed:
            http.should_exit = True
            await http_task
            raise
        if connected is None:
            http.should_exit = True
            await http_task
            return
        # Trace context in record headers; records counted.
        connected = dataclasses.replace(connected, log=ObservedLog(connected.log))
        try:
            await wire(self, connected.log, connected.stores)
            await self._attached.start_loops()
            freeze_startup_heap()
            self.wired = True
            log.info("service ready", service=self.name, port=self.settings.port)
            self._attached.tasks.append(asyncio.create_task(self._probe(connected.probe)))
            await self._stopping.wait()
        finally:
            self.wired = False
            log.info("service stopping", service=self.name)
            await self._attached.stop()
            await connected.close()
            http.should_exit = True
            await http_task
            log.info("service stopped", service=self.name)

    async def _probe(self, probe: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await probe()
                reachable, error = True, None
            except Exception as err:
                reachable, error = False, repr(err)
            if reachable != self.reachable:
                if reachable:
                    log.info("dependencies answer again; ready", service=self.name)
                else:
                    log.warning(
                        "a dependency does not answer; not ready", service=self.name, error=error
                    )
                self.reachable = reachable
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def _connect(self, connect: Connect) -> Connection | None:
        """Until Kafka and Cassandra answer (or SIGTERM): retry with backoff, not ready."""
        backoff = DoublingDelay(0.5, 10.0)
        while not self._stopping.is_set():
            try:
                connection = await connect(self.settings)
                self.connect_error = None
                return connection
            except AuthenticationFailed as err:
                # Credentials and certificates do not fix themselves: stop, loudly.
                self.connect_error = str(err)
                log.error("cannot connect; not retrying", service=self.name, error=str(err))
                raise
            except Exception as err:
                self.connect_error = str(err)
                log.warning(
                    "cannot connect yet; retrying",
                    service=self.name,
                    error=str(err),
                    retry_in_s=backoff.delay_s,
                )
                try:
                    await asyncio.wait_for(self._stopping.wait(), backoff.take())
                except TimeoutError:
                    pass
        return None
