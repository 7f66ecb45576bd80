"""`headrace dev`: every service in one process, talking only through the log.

The services are wired by their own packages' `wire` (as in distributed mode; this server is
their host, runtime/host.py). What is particular to one process is here: the embedded adapters,
the HTTP app with the dev routes and the dashboard, the SQLite sweeper and the app syncer."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.routing import BaseRoute

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.api.context import ApiContext
from headrace.api.controls import RunControls
from headrace.api.realtime import realtime_routes
from headrace.core.clock import Clock, SystemClock
from headrace.dashboard import DashboardAuth, dashboard_routes
from headrace.dev.log_routes import dev_log_routes
from headrace.dev.retention import Sweeper
from headrace.dev.settings import DevSettings
from headrace.messages.topics import Topics
from headrace.obs.logging import register_secrets
from headrace.obs.records import ObservedLog
from headrace.ports.log import Log
from headrace.protocol.app_syncer import AppSyncer
from headrace.realtime.bus import LocalBus
from headrace.realtime.hub import Hub
from headrace.realtime.tokens import TokenIssuer
from headrace.runtime.http import HttpServer
from headrace.runtime.loops import Loops
from headrace.runtime.supervise import spawn
from headrace.services.executor.main import wire as wire_executor
from headrace.services.executor.outbox import Outbox
from headrace.services.ingest.events import EventIngest
from headrace.services.ingest.http import build_app
from headrace.services.ingest.intake import Intake
from headrace.services.ingest.main import wire_intake
from headrace.services.ingest.sync import AppSync
from headrace.services.runner.main import wire as wire_runner
from headrace.services.scheduler.main import wire as wire_scheduler

log = structlog.get_logger(__name__)


class DevServer:
    def __init__(self, settings: DevSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        path = ":memory:"
        if settings.state_dir is not None:
            settings.state_dir.mkdir(parents=True, exist_ok=True)
            path = str(settings.state_dir / "headrace.db")
        self.db = Database(path)
        self.stores = SqliteStores(self.db, clock=self.clock, retention_s=settings.retention_s)
        # Kept bare beside its observed wrapper for /dev/intake and /dev/dead-letters: a record
        # produced there comes from outside, as from a Kafka producer (no trace context added).
        self.embedded_log = InProcLog(settings.partitions, self.db, self.clock)
        self.log: Log = ObservedLog(self.embedded_log)
        self.topics = Topics()
        keys = settings.accounts()
        self.ingest = EventIngest(self.log, self.topics, self.clock)
        self.sync = AppSync(self.log, self.topics, self.stores, self.clock)
        self.syncer = AppSyncer(
            settings.sdk_urls, settings.poll_interval_s, keys, self.clock, self.sync.register
        )
        self.controls = RunControls(
            self.log, self.topics, self.stores, self.clock, self.ingest.send
        )
        ctx = ApiContext(
            stores=self.stores,
            clock=self.clock,
            keys=keys,
            controls=self.controls,
            outbox=Outbox(self.log, self.topics, self.stores),
            backoff_scale=settings.backoff_scale,
            max_steps=settings.max_steps,
            endpoint_timeout_ms=int(settings.endpoint_timeout_s * 1000),
        )
        self.dashboard_auth, self.dashboard_login = _dashboard_auth(settings, keys.required)
        # Here rather than in the command: the token may be one this server made up.
        register_secrets([*keys.secret_values(), self.dashboard_auth.token])
        self.app = build_app(
            ctx,
            self.ingest,
            self.sync,
            extra_routes=[
                *dev_log_routes(ctx, self.embedded_log, self.topics, settings.intake_topics),
                # One process: a published message goes straight to the subscribers.
                *realtime_routes(ctx, LocalBus(Hub()), TokenIssuer(keys)),
                *dashboard_routes(ctx, self.dashboard_auth, self.syncer),
            ],
            metrics_allows=self.dashboard_auth.allows,
            rate_limit=settings.rate_limit,
        )
        self._loops = Loops(self.log, self.topics.dead_letter)
        self._keys = keys
        self.sweeper = Sweeper(
            self.stores,
            self.embedded_log,
            self.topics.dead_letter,
            settings.dead_letter_retention_s,
            self.clock,
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._http: HttpServer | None = None
        self._http_task: asyncio.Task[None] | None = None

    # --- the host the services attach to (runtime/host.py) ---

    def loops(self, log_port: Log) -> Loops:
        return self._loops

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(spawn(name, run))

    def add_routes(self, routes: list[BaseRoute]) -> None:
        self.app.router.routes.extend(routes)

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_stop.append(callback)

    async def start(self) -> None:
        # The services of distributed mode, built as they are there, on the embedded adapters.
        for wire in (wire_runner, wire_scheduler, wire_executor):
            await wire(self, self.log, self.stores)
        wire_intake(self, self.log, Intake(self.ingest, self._keys, self.clock))
        await self._loops.start()
        self.spawn("retention", self.sweeper.run)
        self._http = HttpServer.for_app(self.app, self.settings.host, self.settings.port)
        self._http_task = await self._http.start()
        self._tasks.append(self._http_task)
        if self.settings.sdk_urls:
            self.spawn("syncer", self.syncer.run)
        log.info(
            "headrace dev is up",
            url=f"http://{self.settings.host}:{self.settings.port}",
            state=str(self.settings.state_dir) if self.settings.state_dir else "in memory",
        )
        if self.dashboard_auth.required:
            log.info(
                "keys are required: the dashboard and /metrics ask for the dashboard token",
                login=f"http://{self.settings.host}:{self.settings.port}/dashboard/login",
                token_from=self.dashboard_login,
            )

    async def stop(self) -> None:
        if self._http is not None and self._http_task is not None:
            await self._http.finish(self._http_task)
        await _within("stopping the consume loops", self._loops.stop())
        for task in self._tasks:
            task.cancel()
        await _within(
            "stopping the HTTP server and timers",
            asyncio.gather(*self._tasks, return_exceptions=True),
        )
        for callback in self._on_stop:
            await callback()
        await self.log.close()
        self.db.close()
        log.info("headrace dev stopped")


TOKEN_FILE = "dashboard-token"


def _dashboard_auth(settings: DevSettings, keys_required: bool) -> tuple[DashboardAuth, str]:
    """Open, like Inngest's dev server; a server that requires keys asks for a token, as the
    distributed ingest does. Also where an operator finds the token (never the token itself,
    which no log line holds)."""
    if not keys_required:
        return DashboardAuth.open(), ""
    if settings.dashboard_token:
        return DashboardAuth.with_token(settings.dashboard_token), "--dashboard-token"
    token = secrets.token_urlsafe(24)
    if settings.state_dir is None:
        return DashboardAuth.with_token(token), "none: in memory, set --dashboard-token"
    path = settings.state_dir / TOKEN_FILE
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return DashboardAuth.with_token(token), f"in {path}"


async def _within(step: str, work: Awaitable[Any], seconds: float = 30.0) -> None:
    """A stop that cannot finish must not keep the process from exiting: say which step hung."""
    try:
        await asyncio.wait_for(work, seconds)
    except TimeoutError:
        log.error("shutdown step did not finish; going on", step=step, waited_s=seconds)
