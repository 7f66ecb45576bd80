"""An ingest that is still connecting (after a restart, or while Kafka and Cassandra do not
answer) tells Event API clients to come back: 503 with Retry-After, never a 404 a client
would not retry."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from headrace.testing.dev import eventually
from headrace.testing.sdk_app import free_port


@pytest.fixture
def connecting_ingest() -> Iterator[str]:
    """A real `headrace ingest` whose Kafka and Cassandra are ports nothing listens on: it
    serves HTTP and never gets past connecting."""
    port = free_port()
    env = {
        **os.environ,
        "HEADRACE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "HEADRACE_CASSANDRA_HOSTS": "127.0.0.1",
        "HEADRACE_CASSANDRA_PORT": str(free_port()),
        "HEADRACE_EVENT_KEYS": "test-key=default",
        "HEADRACE_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "headrace", "ingest"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_an_ingest_still_connecting_answers_503_with_retry_after(
    connecting_ingest: str,
) -> None:
    async with httpx.AsyncClient(base_url=connecting_ingest) as http:

        async def serving() -> httpx.Response | None:
            try:
                return await http.get("/health")
            except httpx.TransportError:
                return None

        assert (await eventually(serving, what="the ingest's HTTP server")).status_code == 200
        sent = await http.post("/e/test-key", json={"name": "t/early"})
        ready = await http.get("/ready")
    assert sent.status_code == 503
    assert sent.headers["retry-after"] == "1"
    assert "the ingest service is starting" in sent.json()["error"]
    assert ready.status_code == 503
