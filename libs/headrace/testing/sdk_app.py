"""Serving an app written with the official `inngest` SDK on a loopback port, for tests and
benchmarks: a real HTTP peer that none of us wrote."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import starlette.requests
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_client(
    server_url: str, app_id: str, *, signing_key: str | None = None, **kwargs: Any
) -> inngest.Inngest:
    """A client pointed at a headrace server: in dev mode, or with a signing key in production
    mode (it then checks the signature of every call and syncs with its key)."""
    return inngest.Inngest(
        app_id=app_id,
        is_production=signing_key is not None,
        signing_key=signing_key,
        api_base_url=server_url,
        event_api_base_url=server_url,
        **kwargs,
    )


class ServedApp:
    """The app runs in a thread with its own event loop, as it would in its own process."""

    def __init__(
        self,
        client: inngest.Inngest,
        functions: list[inngest.Function[Any]],
        *,
        port: int | None = None,
        streaming: bool = False,
        serve_origin: str | None = None,
        on_request: Callable[[dict[str, str], bytes], None] | None = None,
        on_answered: Callable[[float, float], None] | None = None,
        keep_request_headers: bool = False,
    ) -> None:
        """`on_request(headers, body)` sees every request as it arrives, in the app's thread;
        `on_answered(arrived, answered)` is told when each call of a function (a POST) arrived
        and when the SDK had its answer (`time.perf_counter`), in the app's thread;
        `serve_origin` is where the app says it is reached, by default its own port;
        `keep_request_headers` keeps every request's headers in `request_headers` (not by
        default: a long-running app would keep them all)."""
        self.port = port or free_port()
        # The headers of every request the app got, in order (what headrace sent it).
        self.request_headers: list[dict[str, str]] = []
        app = fastapi.FastAPI()

        @app.middleware("http")
        async def remember_headers(request: fastapi.Request, call_next: Any) -> Any:
            headers = dict(request.headers)
            if keep_request_headers:
                self.request_headers.append(headers)
            if on_request is not None:
                # Starlette keeps the body it read here for the SDK's handler. A caller that
                # went away mid-body (a killed executor) leaves nothing to run: the SDK's own
                # read fails the same way.
                with contextlib.suppress(starlette.requests.ClientDisconnect):
                    on_request(headers, await request.body())
            if on_answered is None or request.method != "POST":
                return await call_next(request)
            arrived = time.perf_counter()
            response = await call_next(request)
            on_answered(arrived, time.perf_counter())
            return response

        inngest.fast_api.serve(
            app,
            client,
            functions,
            serve_origin=serve_origin or f"http://127.0.0.1:{self.port}",
            streaming=inngest.Streaming.FORCE if streaming else None,
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/inngest"

    def _serve(self) -> None:
        asyncio.run(self._server.serve())

    def start(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the SDK app did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
