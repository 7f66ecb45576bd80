"""Wiring of `headrace dev`: every service in one process, talking only through the log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import structlog
import uvicorn

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.api.context import ApiContext
from headrace.core.clock import Clock, SystemClock
from headrace.dev.settings import DevSettings
from headrace.dev.syncer import AppSyncer
from headrace.messages.topics import Topics
from headrace.ports.log import Log, PartitionsCallback
from headrace.protocol.driver import AppDriver
from headrace.runtime.consume import ConsumeLoop, Handler
from headrace.services.executor.service import Executor
from headrace.services.ingest.events import EventIngest
from headrace.services.ingest.http import build_app
from headrace.services.ingest.sync import AppSync
from headrace.services.runner.service import Runner
from headrace.services.scheduler.service import Scheduler

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the dev server owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DevServer:
    def __init__(self, settings: DevSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        path = ":memory:"
        if settings.state_dir is not None:
            settings.state_dir.mkdir(parents=True, exist_ok=True)
            path = str(settings.state_dir / "headrace.db")
        self.db = Database(path)
        self.stores = SqliteStores(self.db)
        self.log: Log = InProcLog(settings.partitions, self.db)
        self.topics = Topics()
        server_kind = "cloud" if settings.signing_key else "dev"
        self.driver = AppDriver(
            self.clock, signing_key=settings.signing_key, timeout_s=settings.call_timeout_s
        )
        self.ingest = EventIngest(self.log, self.topics, self.clock)
        self.sync = AppSync(self.log, self.topics, self.stores, self.clock)
        self.runner = Runner(self.log, self.topics, self.stores, self.clock)
        self.scheduler = Scheduler(self.log, self.topics, self.stores, self.clock)
        self.executor = Executor(
            self.log,
            self.topics,
            self.stores,
            self.driver,
            self.clock,
            server_kind=server_kind,
            backoff_scale=settings.backoff_scale,
        )
        self.syncer = AppSyncer(settings.sdk_urls, settings.poll_interval_s, server_kind)
        ctx = ApiContext(
            stores=self.stores,
            clock=self.clock,
            signing_key=settings.signing_key,
        )
        self.app = build_app(ctx, self.ingest, self.sync, event_keys=settings.event_keys)
        self._loops: list[ConsumeLoop] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._http: _Server | None = None

    def _loop(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        concurrency: int,
        on_assigned: PartitionsCallback | None = None,
        on_revoked: PartitionsCallback | None = None,
    ) -> ConsumeLoop:
        loop: ConsumeLoop | None = None

        async def revoked(partitions: set[int]) -> None:
            # Finish and commit the partition's records before it moves.
            if loop is not None:
                await loop.drain(partitions)
            if on_revoked is not None:
                await on_revoked(partitions)

        consumer = self.log.consumer(topic, group, on_assigned=on_assigned, on_revoked=revoked)
        loop = ConsumeLoop(consumer, handler, name=group, concurrency=concurrency)
        self._loops.append(loop)
        return loop

    async def start(self) -> None:
        loops = [
            self._loop(
                self.topics.events,
                "runner",
                self.runner.handle,
                concurrency=1,
                on_assigned=self.runner.on_assigned,
                on_revoked=self.runner.on_revoked,
            ),
            self._loop(
                self.topics.schedule,
                "scheduler",
                self.scheduler.handle,
                concurrency=1,
                on_assigned=self.scheduler.on_assigned,
                on_revoked=self.scheduler.on_revoked,
            ),
            self._loop(
                self.topics.work,
                "executor",
                self.executor.handle,
                concurrency=self.settings.executor_concurrency,
            ),
        ]
        for loop in loops:
            await loop.consumer.start()
            self._tasks.append(asyncio.create_task(loop.run()))
        self._tasks.append(asyncio.create_task(self.scheduler.wheel.run()))
        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._http = _Server(config)
        self._tasks.append(asyncio.create_task(self._http.serve()))
        while not self._http.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.02)
        if self.settings.sdk_urls:
            self._tasks.append(asyncio.create_task(self.syncer.run()))
        log.info(
            "headrace dev is up",
            url=f"http://{self.settings.host}:{self.settings.port}",
            state=str(self.settings.state_dir) if self.settings.state_dir else "in memory",
        )

    async def stop(self) -> None:
        if self._http is not None:
            self._http.should_exit = True
        for loop in self._loops:
            await loop.stop()
            await loop.consumer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.driver.close()
        await self.log.close()
        self.db.close()
        log.info("headrace dev stopped")
