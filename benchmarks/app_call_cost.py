"""The instructions one app call (`AppDriver.call`) costs the engine, counted by valgrind's
cachegrind: deterministic, unlike CPU time on a shared machine. The driver calls a raw HTTP
server on loopback, in a process of its own (not counted), that answers every call with one
StepRun op as an SDK would. A call costs (instructions with 120 calls - with 20) / 100, so
start-up and imports cancel out.

    python benchmarks/app_call_cost.py

Needs valgrind (`apt-get install valgrind`). For another checkout's driver, run it with
PYTHONPATH=<checkout>/libs.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys

from headrace.core.clock import SystemClock
from headrace.protocol.driver import AppDriver

BODY = b'{"event":{"name":"e","data":{}},"steps":{},"ctx":{"run_id":"r"}}'
OPS = b'[{"op":"StepRun","id":"h1","name":"s","data":1}]'
ANSWER = (
    b"HTTP/1.1 206 Partial Content\r\ncontent-type: application/json\r\n"
    b"x-inngest-sdk: inngest-py:v0.5.19\r\nx-inngest-req-version: 1\r\n"
    b"content-length: " + str(len(OPS)).encode() + b"\r\n\r\n" + OPS
)
FEW, MANY = 20, 120


async def serve() -> None:
    """Answer every request with ANSWER, connections kept alive; print the port first."""

    async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            length = next(
                int(field.split(b":", 1)[1])
                for field in head.split(b"\r\n")
                if field.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(ANSWER)

    server = await asyncio.start_server(answer_each, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


async def make_calls(port: int, calls: int) -> None:
    driver = AppDriver(SystemClock())
    url = f"http://127.0.0.1:{port}/api/inngest?fnId=app-fn&stepId=step"
    headers = {"x-run-id": "r", "x-inngest-step-id": "step"}
    try:
        for _ in range(calls):
            outcome = await driver.call(
                url, BODY, headers, account_id="default", before_send=lambda: None
            )
            assert outcome.status == 206 and outcome.error is None, outcome
    finally:
        await driver.close()


def calls_to_app(calls: int) -> None:
    app = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE)
    try:
        assert app.stdout is not None
        asyncio.run(make_calls(int(app.stdout.readline()), calls))
    finally:
        app.kill()


def instructions(calls: int) -> int:
    run = subprocess.run(
        [
            *("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"),
            *(sys.executable, __file__, "--calls", str(calls)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    assert found is not None, run.stderr
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, help="make this many calls (under valgrind)")
    parser.add_argument("--serve", action="store_true", help="be the app")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
    elif args.calls is not None:
        calls_to_app(args.calls)
    else:
        few, many = instructions(FEW), instructions(MANY)
        per_call = (many - few) / (MANY - FEW)
        print(f"{per_call / 1e6:.2f} M instructions per call ({FEW} calls: {few}, {MANY}: {many})")


if __name__ == "__main__":
    main()
