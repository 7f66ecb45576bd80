"""The fault schedule's app in a process of its own (issue 16): the functions of `fault_workload`
served by the official Python SDK on uvicorn, so the app has capacity of its own rather than a
thread of the test process, and its record outlives the test's memory:

    python tests/resilience/fault_app.py --port PORT --engine URL --records DIR [--workers 2]

Each worker process writes what it saw to its own file in DIR (`fault_records`): the test and
its checker merge them. Any worker can serve any call: the SDK keeps nothing between calls (each
carries the run's event, memoized steps and attempt) and the workload's state is the records.
`serving_fault_app` starts and stops it from the test."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fastapi
import httpx
import inngest.fast_api
import uvicorn
from fault_records import RecordWriter
from fault_workload import EventLog, Flaky, functions
from workload import Executions, parse_call, serving

from headrace.testing.cluster import die_with_parent
from headrace.testing.dev import eventually
from headrace.testing.sdk_app import make_client

APP_ID = "fault-app"
# How the parent process tells its workers (spawned, not forked) where to work.
ENGINE_ENV, RECORDS_ENV, ORIGIN_ENV = "FAULT_APP_ENGINE", "FAULT_APP_RECORDS", "FAULT_APP_ORIGIN"
STARTUP_S = 60.0  # spawning the workers and importing the SDK, on a loaded 2-core machine
STOP_S = 15.0

Scope = dict[str, Any]
Message = dict[str, Any]


class Recording:
    """ASGI middleware: records each call of a run once its body is read (its arrival), and
    when its response was sent in full (its answer), or when the app gave up on it unanswered.
    Sending to a caller that went away (the engine timed out) is a no-op in uvicorn, so an
    answer after the call timeout is still recorded when the app finished it."""

    def __init__(self, app: Any, writer: RecordWriter) -> None:
        self.app, self.writer = app, writer

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        while not read or (read[-1]["type"] == "http.request" and read[-1].get("more_body")):
            read.append(await receive())
        arrived = time.monotonic()

        async def replay() -> Message:
            return read.pop(0) if read else await receive()

        call = None
        if read[-1]["type"] == "http.request":  # else the caller went away mid-body
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            call = parse_call(headers, b"".join(m.get("body", b"") for m in read), arrived)
        if call is None:
            await self.app(scope, replay, send)
            return
        number = self.writer.call(call)
        serving(call)
        status: int | None = None
        answered = False

        async def answering(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered = True
                self.writer.answer(number, status, time.monotonic())

        try:
            await self.app(scope, replay, answering)
        finally:
            if not answered:
                self.writer.answer(number, None, time.monotonic())


def create_app() -> Recording:
    """One worker's app (uvicorn's factory, in each worker process)."""
    engine_url = os.environ[ENGINE_ENV]
    writer = RecordWriter(Path(os.environ[RECORDS_ENV]))
    client = make_client(engine_url, APP_ID)
    executions = Executions(on_execution=writer.execution)
    events = EventLog(engine_url, on_sent=writer.sent)
    app = fastapi.FastAPI()
    inngest.fast_api.serve(
        app,
        client,
        functions(client, executions, events, Flaky(writer.flaky_failed)),
        serve_origin=os.environ[ORIGIN_ENV],
    )
    return Recording(app, writer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine", required=True, help="the engine's URL (API and Event API)")
    parser.add_argument("--records", type=Path, required=True, help="where to write records")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.records.mkdir(parents=True, exist_ok=True)
    os.environ[ENGINE_ENV] = args.engine
    os.environ[RECORDS_ENV] = str(args.records)
    os.environ[ORIGIN_ENV] = f"http://127.0.0.1:{args.port}"
    uvicorn.run(
        "fault_app:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=5,
        # The parent replaces a worker that misses a health check; a busy one is not hung.
        timeout_worker_healthcheck=60,
    )


@contextlib.asynccontextmanager
async def serving_fault_app(
    engine_url: str, port: int, records: Path, log: Path, workers: int
) -> AsyncIterator[str]:
    """The app in its own process group, its output in `log`, until the block ends (or the test
    process dies); yields the URL to sync."""
    url = f"http://127.0.0.1:{port}/api/inngest"
    command = [sys.executable, __file__, "--port", str(port), "--engine", engine_url]
    command += ["--records", str(records), "--workers", str(workers)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    async def answers() -> bool:
        assert process.returncode is None, f"the fault app exited ({process.returncode}); {log}"
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(url)).status_code == 200
        return False

    try:
        await eventually(answers, timeout=STARTUP_S, what=f"the fault app on port {port}")
        yield url
    finally:
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to uvicorn's parent, which stops its workers; if that takes too long, SIGKILL
    to the process group it leads (the workers with it)."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_S)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


if __name__ == "__main__":
    main()
