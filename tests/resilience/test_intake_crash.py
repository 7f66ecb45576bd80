"""The ingest killed with SIGKILL while a producer streams events into the intake topic: once it
is back, every event has started exactly one run (none lost, none started twice)."""

from __future__ import annotations

import asyncio
import collections
import json

import inngest
import pytest
from aiokafka import AIOKafkaProducer

from headrace.testing.cluster import Cluster
from headrace.testing.dev import EngineHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client

pytestmark = [pytest.mark.kafka, pytest.mark.cassandra, pytest.mark.e2e]

EVENTS = 1000
# Spread over ~5 s, so that the kill lands in the middle of the stream.
PER_SECOND = 200


async def _stream(bootstrap: str, topic: str, sent: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for n in range(EVENTS):
            value = json.dumps({"name": "intake/tick", "data": {"n": n}}).encode()
            await producer.send(topic, value, headers=[("event-key", b"test-key")])
            if n % 20 == 19:
                await asyncio.sleep(20 / PER_SECOND)
        await producer.flush()
    finally:
        await producer.stop()
        sent.set()


async def test_kill_9_the_ingest_mid_stream_loses_no_event_and_starts_no_run_twice(
    cluster: tuple[Cluster, EngineHandle],
) -> None:
    procs, engine = cluster
    settings = procs.settings
    client = make_client(engine.url, "intake-crash-app")

    @client.create_function(fn_id="tick", trigger=inngest.TriggerEvent(event="intake/tick"))
    async def tick(ctx: inngest.Context) -> int:
        return int(ctx.event.data["n"])

    with ServedApp(client, [tick]) as app:
        await engine.sync(app.url, "intake-crash-app")
        sent = asyncio.Event()
        streaming = asyncio.create_task(
            _stream(
                settings.cluster.kafka_bootstrap, f"{settings.cluster.topic_prefix}intake", sent
            )
        )
        await asyncio.sleep(2)
        assert not sent.is_set(), "the stream ended before the kill: make it longer"
        [ingest] = procs.of("ingest")
        procs.kill(ingest)
        await procs.restart(ingest)
        await streaming

        async def all_ran() -> list[int] | None:
            # More than EVENTS if an event started two runs: the listing must reach past it.
            runs = await engine.stores.list_runs(
                engine.account, fn_id="intake-crash-app-tick", limit=2 * EVENTS
            )
            done = [r.output for r in runs if r.status == "completed"]
            return done if len(runs) >= EVENTS and len(done) == len(runs) else None

        outputs = await eventually(all_ran, timeout=180, what=f"{EVENTS} runs")

    counts = collections.Counter(outputs)
    assert sorted(counts) == list(range(EVENTS)), "an event started no run"
    assert [n for n, c in counts.items() if c > 1] == [], "an event started two runs"
