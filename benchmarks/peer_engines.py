"""The engines the peer comparison measures (benchmarks/peer_comparison.py), each started as
its own process and stopped after: headrace dev, headrace distributed (one process per service,
on the shared Kafka and Cassandra), `inngest dev` and `inngest start`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_cluster import engine_in

from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.testing.cluster import die_with_parent
from headrace.testing.sdk_app import free_port

# Accepted by every engine here: the distributed test cluster's keys name it, `inngest start`
# is given it, dev servers take any.
EVENT_KEY = "test-key"


def engine_env() -> dict[str, str]:
    """The caller's environment without its INNGEST_* and HEADRACE_* settings, which both
    engines would read."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "HEADRACE_"))}


@contextlib.asynccontextmanager
async def process(command: list[str], log_path: Path, url: str, port: int) -> AsyncIterator[None]:
    """`command` running until the block ends, once `url` answers 200 from its own `port`
    (`inngest dev` moves to another port, saying so only in its log, when its own is taken)."""
    proc = spawn(command, log_path)
    try:
        await until_ready(proc, url, port, log_path)
        yield
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:
        return subprocess.Popen(
            command,
            env=engine_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def listens_on(pid: int, port: int) -> bool:
    sockets = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return f"pid={pid}," in sockets


async def until_ready(proc: subprocess.Popen[bytes], url: str, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    if not listens_on(proc.pid, port):
                        raise RuntimeError(f"port {port} answers, but not as pid {proc.pid}")
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready in 90 s; see {log_path}")


@dataclass(frozen=True)
class Running:
    url: str
    # The `/metrics` URL of each of headrace's processes, by name; none for Inngest.
    metrics: dict[str, str]


@contextlib.asynccontextmanager
async def engine(
    target: str, args: argparse.Namespace, logs: Path, *, max_steps: int = DEFAULT_MAX_STEPS
) -> AsyncIterator[Running]:
    """The engine of `target` running. `max_steps`: headrace's step limit (Inngest's is its
    own, 1,000)."""
    if target == "headrace-distributed":
        one_each = {"ingest": 1, "runner": 1, "scheduler": 1, "executor": 1}
        env = {"HEADRACE_SIGNING_KEY": args.signing_key}
        async with engine_in(
            "distributed", "peer", counts=one_each, env=env, max_steps=max_steps
        ) as handle:
            yield Running(handle.url, handle.metrics)
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if target == "headrace-dev":
        command = [
            *(sys.executable, "-m", "headrace", "dev", "--in-memory"),
            *("--port", str(port), "--max-steps", str(max_steps)),
        ]
        async with process(command, logs / f"{target}.log", f"{url}/health", port):
            yield Running(url, {"dev": f"{url}/metrics"})
        return
    # Inngest binds four more ports; each is given a free one.
    gateway, gateway_grpc, executor_grpc, debug = (free_port() for _ in range(4))
    ports = [
        *("--host", "127.0.0.1", "--port", str(port), "--tick", str(args.tick)),
        *("--connect-gateway-port", str(gateway)),
        *("--connect-gateway-grpc-port", str(gateway_grpc)),
        *("--connect-executor-grpc-port", str(executor_grpc)),
    ]
    if target == "inngest-dev":
        command = [
            str(args.inngest_bin),
            "dev",
            "--no-discovery",
            "--no-poll",
            *ports,
            *("--debug-api-port", str(debug)),
        ]
        async with process(command, logs / f"{target}.log", f"{url}/health", port):
            yield Running(url, {})
        return
    with tempfile.TemporaryDirectory(prefix="peer-inngest-sqlite-") as sqlite_dir:
        command = [
            str(args.inngest_bin),
            "start",
            *ports,
            "--sqlite-dir",
            sqlite_dir,
            *("--signing-key", args.signing_key, "--event-key", EVENT_KEY),
        ]
        async with process(command, logs / f"{target}.log", f"{url}/health", port):
            yield Running(url, {})
