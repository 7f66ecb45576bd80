"""Serving a process's HTTP routes with uvicorn, inside the process's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @classmethod
    def for_app(cls, app: Any, host: str, port: int) -> HttpServer:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
        )
        return cls(config)

    async def start(self) -> asyncio.Task[None]:
        """Serve in a task; return once the socket listens (or raise why it could not)."""
        task = asyncio.create_task(self.serve())
        while not self.started:
            if task.done():
                task.result()
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.02)
        return task

    async def finish(self, task: asyncio.Task[None], timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and give it `timeout` seconds to do so. Its shutdown closes the
        listening socket first; a serve task cancelled before that leaves the socket bound for
        as long as the process lives, so the port could not be served again from it (a
        `headrace dev` restarted in the same process, as tests do)."""
        self.should_exit = True
        await asyncio.wait({task}, timeout=timeout)
