"""A `headrace dev` server in the test's own process, with helpers to drive and observe it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from headrace.dev.server import DevServer
from headrace.dev.settings import DevSettings
from headrace.messages.state import ENDED, HistoryEntry, RunState
from headrace.ports.stores import Stores
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
    """A running headrace, in either mode: its API URL, its stores (to observe), its stop."""

    def __init__(
        self,
        url: str,
        stores: Stores,
        stop: Callable[[], Awaitable[None]],
        mode: str = "dev",
        *,
        partitions: int,
        restart: Callable[[], Awaitable[Stores]] | None = None,
    ) -> None:
        self.url = url
        self.stores = stores
        self.mode = mode
        self.partitions = partitions
        self._stop = stop
        self._restart = restart
        self.account = "default"

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
        async with httpx.AsyncClient() as client:
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

    async def run_of_event(self, event_id: str, timeout: float = 20) -> str:
        return (await self.runs_of_event(event_id, 1, timeout))[0]

    async def finished(self, run_id: str, timeout: float = 20) -> RunState:
        async def probe() -> RunState | None:
            run = await self.stores.get_run(run_id)
            return run if run is not None and run.status in ENDED else None

        return await eventually(probe, timeout=timeout, what=f"run {run_id} to end")

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


async def start_dev(state_dir: Path | None, **overrides: Any) -> EngineHandle:
    settings = DevSettings(
        port=overrides.pop("port", None) or free_port(),
        state_dir=state_dir,
        backoff_scale=overrides.pop("backoff_scale", 0.005),
        poll_interval_s=overrides.pop("poll_interval_s", 3600),
        endpoint_timeout_s=overrides.pop("endpoint_timeout_s", TEST_ENDPOINT_TIMEOUT_S),
        **overrides,
    )
    servers = [DevServer(settings)]
    await servers[0].start()

    async def stop() -> None:
        await servers[-1].stop()

    async def restart() -> Stores:
        # The same settings: same port and state dir (a restart of an in-memory engine
        # starts empty, which is the caller's to avoid).
        await servers[-1].stop()
        servers.append(DevServer(settings))
        await servers[-1].start()
        return servers[-1].stores

    return EngineHandle(
        f"http://{settings.host}:{settings.port}",
        servers[0].stores,
        stop,
        partitions=settings.partitions,
        restart=restart,
    )
