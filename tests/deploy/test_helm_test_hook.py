"""The chart's `helm test` hook (deploy/helm/headrace/files/event-roundtrip.py) against a real
distributed headrace on Kafka and Cassandra, with the keys a deployment would give it: it sends
an event and reads it back, and fails, saying why, when the ingest refuses its key."""

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from headrace.testing.cluster import cluster_test_settings, start_cluster
from headrace.testing.dev import EngineHandle
from headrace.testing.kube import CHART

SCRIPT = CHART / "files" / "event-roundtrip.py"
SIGNING_KEY = "signkey-prod-" + "d4" * 32


@pytest.fixture(scope="module")
async def keyed_engine(
    kafka_bootstrap: str,
    cassandra_contact: tuple[str, int],
    drop_keyspace: Callable[[str], None],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EngineHandle]:
    """One of each service, with an event key and a signing key for the account "acme"."""
    name = f"helm_test_{uuid.uuid4().hex[:8]}"
    settings = cluster_test_settings(
        kafka_bootstrap, cassandra_contact, keyspace=name, partitions=1
    )
    env = {"HEADRACE_EVENT_KEYS": "acme-key=acme", "HEADRACE_SIGNING_KEYS": f"acme={SIGNING_KEY}"}
    counts = {"ingest": 1, "runner": 1, "scheduler": 1, "executor": 1}
    logs: Path = tmp_path_factory.mktemp("logs")
    _, engine = await start_cluster(settings, logs, counts=counts, env=env)
    try:
        yield engine
    finally:
        await engine.stop()
        drop_keyspace(name)


async def _hook(engine: EngineHandle, **env: str) -> subprocess.CompletedProcess[str]:
    """The script as the test pod runs it: Python's standard library and the pod's environment."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-I", SCRIPT],
        env={"INGEST_URL": engine.url, "TIMEOUT_SECONDS": "60", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_sends_an_event_and_reads_it_back(keyed_engine: EngineHandle) -> None:
    done = await _hook(
        keyed_engine,
        HEADRACE_EVENT_KEYS="acme-key=acme",
        HEADRACE_SIGNING_KEYS=f"acme={SIGNING_KEY}",
    )
    assert done.returncode == 0, done.stderr
    sent_line, read_line = done.stdout.splitlines()
    event_id = sent_line.split()[2]
    assert read_line == f"read event {event_id} back"
    # The event is the account's: stored under acme, with the hook's name.
    event = await keyed_engine.stores.get_event(event_id)
    assert event is not None
    assert (event.account_id, event.name) == ("acme", "headrace/helm.test")


async def test_fails_saying_why_when_the_event_key_is_refused(keyed_engine: EngineHandle) -> None:
    done = await _hook(keyed_engine, HEADRACE_EVENT_KEYS="stolen-key=acme")
    assert done.returncode == 1
    assert "sending an event to" in done.stderr
    assert "HTTP 401" in done.stderr
    assert "unknown event key" in done.stderr


async def test_fails_saying_why_when_it_cannot_read_as_the_account(
    keyed_engine: EngineHandle,
) -> None:
    done = await _hook(
        keyed_engine,
        HEADRACE_EVENT_KEYS="acme-key=acme",
        HEADRACE_SIGNING_KEY="signkey-prod-" + "e5" * 32,
    )
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr
    assert "a valid signing key is required" in done.stderr
