"""A `headrace dev` server in the test's own process, with helpers to drive and observe it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx

from headrace.core.clock import FakeClock
from headrace.dev.server import DevServer
from headrace.messages.state import ENDED, HistoryEntry, RunState
from headrace.ports.stores import Stores
from headrace.protocol.app_syncer import SYNC_TIMEOUT_S
from headrace.runtime.settings import DEV_SETTINGS, EmbeddedStorage
from headrace.testing.sdk_app import free_port

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


class EngineHandle:
    """A running headrace, in either mode: its API URL, its stores (to observe), its stop, and
    the `/metrics` URL of each of its processes by name (when it runs processes of its own)."""

    def __init__(
        self,
        url: str,
        stores: Stores,
        stop: Callable[[], Awaitable[None]],
        mode: str = "dev",
        *,
        partitions: int,
        restart: Callable[[], Awaitable[Stores]] | None = None,
        clock: FakeClock | None = None,
        metrics: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.metrics = metrics or {}
        self.stores = stores
        self.mode = mode
        self.partitions = partitions
        self._stop = stop
        self._restart = restart
        self.clock = clock
        self.account = "default"

    def now_ms(self) -> int:
        """The engine's time."""
        return self.clock.now_ms() if self.clock is not None else time.time_ns() // 1_000_000

    async def advance(self, seconds: float) -> None:
        """Let `seconds` of the engine's time pass: at once on a fake clock, else in real
        time (a distributed engine's processes each read the system clock)."""
        if self.clock is not None:
            await self.clock.advance(int(seconds * 1000))
        else:
            await asyncio.sleep(seconds)

    async def let_pass(self, seconds: float, *, step_s: float) -> None:
        """Let `seconds` of the engine's time pass, `step_s` at a time: on a fake clock each
        step with a moment of real time for what it starts to happen, so that timers due over
        the span fire spread out as in real time, not all at once; else in real time."""
        for _ in range(round(seconds / step_s)):
            await self.advance(step_s)
            if self.clock is not None:
                await asyncio.sleep(0.1)

    async def passing(
        self,
        probe: Callable[[], Awaitable[T | None]],
        *,
        step_s: float,
        timeout: float = 20.0,
        what: str = "condition",
    ) -> T:
        """`eventually`, the engine's time passing meanwhile: on a fake clock, `step_s` more
        each time `probe` finds nothing yet; else as it passes."""

        async def moved() -> T | None:
            value = await probe()
            if (value is None or value is False) and self.clock is not None:
                await self.clock.advance(int(step_s * 1000))
            return value

        return await eventually(moved, timeout=timeout, what=what)

    async def stop(self) -> None:
        await self._stop()

    async def restart(self) -> None:
        """Stop the whole engine and start it again on the same state and ports, as an
        operator would; runs in flight must resume. Waits until it serves again."""
        if self._restart is None:
            raise NotImplementedError(f"this {self.mode} engine cannot restart")
        self.stores = await self._restart()

    async def sync(
        self,
        app_url: str,
        app_id: str | None = None,
        *,
        server_kind: str = "dev",
        account: str | None = None,
    ) -> None:
        """Sync an app the way `headrace dev -u` does, and wait until it is registered (in
        `account`, by default the handle's). A production-mode app wants `server_kind="cloud"`
        and registers with its signing key's account."""
        async with httpx.AsyncClient(timeout=SYNC_TIMEOUT_S) as client:
            response = await client.put(
                app_url, json={"url": app_url}, headers={"x-inngest-server-kind": server_kind}
            )
            assert response.status_code == 200, response.text
        if app_id is not None:

            async def synced() -> bool:
                app = await self.stores.get_app(account or self.account, app_id)
                return app is not None and app.url.startswith(app_url.split("?")[0])

            await eventually(synced, what=f"app {app_id} synced from {app_url}")

    async def send(self, *events: dict[str, Any], key: str = "test-key") -> list[str]:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{self.url}/e/{key}", json=list(events))
            assert response.status_code == 200, response.text
            return list(response.json()["ids"])

    async def runs_of_event(self, event_id: str, count: int = 1, timeout: float = 20) -> list[str]:
        async def probe() -> list[str] | None:
            runs = await self.stores.runs_for_event(event_id)
            return runs if len(runs) >= count else None

        return await eventually(probe, timeout=timeout, what=f"{count} run(s) of {event_id}")

    async def run_of_event(
        self, event_id: str, timeout: float = 20, *, step_s: float | None = None
    ) -> str:
        """`step_s`: the engine's time passes meanwhile, as in `passing`."""
        if step_s is None:
            return (await self.runs_of_event(event_id, 1, timeout))[0]

        async def probe() -> str | None:
            runs = await self.stores.runs_for_event(event_id)
            return runs[0] if runs else None

        what = f"a run of {event_id}"
        return await self.passing(probe, step_s=step_s, timeout=timeout, what=what)

    async def finished(
        self, run_id: str, timeout: float = 20, *, step_s: float | None = None
    ) -> RunState:
        """The run once it has ended; `step_s`: the engine's time passes meanwhile, as in
        `passing`."""

        async def probe() -> RunState | None:
            run = await self.stores.get_run(run_id)
            return run if run is not None and run.status in ENDED else None

        what = f"run {run_id} to end"
        if step_s is not None:
            return await self.passing(probe, step_s=step_s, timeout=timeout, what=what)
        return await eventually(probe, timeout=timeout, what=what)

    async def history(self, run_id: str) -> list[HistoryEntry]:
        return await self.stores.list_history(run_id)

    async def timer_ids(self, until_ms: int) -> set[str]:
        """The ids of every timer due by `until_ms`, in every partition."""
        return {
            timer.timer_id
            for partition in range(self.partitions)
            for timer in await self.stores.timers_due(partition, until_ms)
        }

    async def runs_of_function(self, fn_id: str) -> list[RunState]:
        return await self.stores.list_runs(self.account, fn_id=fn_id, limit=1000)


DevHandle = EngineHandle
# A Durable Endpoint's request may hold its run this long in tests (1 h by default): long for
# any request a test makes, short enough to watch a dead one's run fail.
TEST_ENDPOINT_TIMEOUT_S = 8.0
# The longest wait before a first retry: Inngest's 15 s plus up to 30 s of jitter
# (core/backoff.py). A test on a fake clock moves past it.
FIRST_BACKOFF_MAX_S = 45.0
# `--retry-interval` of the engines tests run in real time (distributed ones, `headrace dev` in
# a process of its own): every retry a tenth of a second later, not after Inngest's backoff.
TEST_RETRY_INTERVAL_S = 0.1


def fake_clock() -> FakeClock:
    """A fake clock that starts at the real time: SDKs compute some times themselves
    (`step.sleepUntil(new Date(...))`), and those must fall near the engine's."""
    return FakeClock(time.time_ns() // 1_000_000)


async def start_dev(
    state_dir: Path | None,
    *,
    clock: FakeClock | None = None,
    sdk_urls: Sequence[str] = (),
    **overrides: Any,
) -> EngineHandle:
    """`clock`: time for the whole engine, moved by `EngineHandle.advance`; `overrides`:
    engine settings (runtime/settings.py) other than dev's defaults."""
    settings = replace(
        DEV_SETTINGS,
        port=overrides.pop("port", None) or free_port(),
        endpoint_timeout_s=overrides.pop("endpoint_timeout_s", TEST_ENDPOINT_TIMEOUT_S),
        embedded=EmbeddedStorage(
            state_dir=state_dir, sdk_urls=tuple(sdk_urls), poll_interval_s=3600
        ),
        **overrides,
    )
    servers = [DevServer(settings, clock)]
    await servers[0].start()

    async def stop() -> None:
        await servers[-1].stop()

    async def restart() -> Stores:
        # The same settings: same port and state dir (a restart of an in-memory engine
        # starts empty, which is the caller's to avoid).
        await servers[-1].stop()
        servers.append(DevServer(settings, clock))
        await servers[-1].start()
        return servers[-1].stores

    return EngineHandle(
        f"http://{settings.host}:{settings.port}",
        servers[0].stores,
        stop,
        partitions=settings.partitions,
        restart=restart,
        clock=clock,
    )
