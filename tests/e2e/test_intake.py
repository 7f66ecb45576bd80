"""Events published straight to the Kafka intake topic by a plain aiokafka producer, as a
high-volume producer would: they start runs like Event API events; bad records land in the
dead-letter topic untouched, with their reason, and are counted on `/metrics`."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import inngest
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from headrace.runtime.settings import Settings
from headrace.testing.dev import EngineHandle, eventually
from headrace.testing.metrics import intake_rejected
from headrace.testing.sdk_app import ServedApp, make_client

pytestmark = [pytest.mark.kafka, pytest.mark.cassandra]


async def _produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, list[tuple[str, bytes]]]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value, headers in records:
            # A key of the producer's own choosing, not an account: headrace does not read it.
            await producer.send_and_wait(topic, value, key=uuid.uuid4().bytes, headers=headers)
    finally:
        await producer.stop()


async def test_events_from_the_intake_topic_start_runs_and_bad_records_are_set_aside(
    distributed_engine: EngineHandle, distributed_settings: Settings
) -> None:
    engine = distributed_engine
    settings = distributed_settings
    intake = f"{settings.cluster.topic_prefix}intake"
    tag = uuid.uuid4().hex[:8]
    client = make_client(engine.url, "intake-app")

    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="intake/order"))
    async def greet(ctx: inngest.Context) -> str:
        return await ctx.step.run("greet", lambda: f"order {ctx.event.data['n']}")

    key = [("event-key", b"test-key")]
    good = [
        (json.dumps({"name": "intake/order", "data": {"n": 1, "tag": tag}}).encode(), key),
        (
            json.dumps(
                [
                    {"name": "intake/order", "data": {"n": 2, "tag": tag}},
                    {"name": "intake/order", "data": {"n": 3, "tag": tag}},
                ]
            ).encode(),
            key,
        ),
    ]
    bad = {
        "invalid_json": (f"not json {tag}".encode(), key),
        # Values differ from one case to the next: the dead-letter topic is searched by value.
        "unknown_event_key": (
            json.dumps({"name": "intake/order", "data": {"tag": tag, "case": 1}}).encode(),
            [("event-key", b"no-such-key")],
        ),
        "no_event_key": (
            json.dumps({"name": "intake/order", "data": {"tag": tag, "case": 2}}).encode(),
            [],
        ),
        # A record is all or nothing: the valid first event is not accepted either.
        "invalid_event": (
            json.dumps([{"name": "intake/order", "data": {"tag": tag}}, {"data": {}}]).encode(),
            key,
        ),
    }
    async with httpx.AsyncClient() as http:
        before = intake_rejected((await http.get(f"{engine.url}/metrics")).text, intake)

    with ServedApp(client, [greet]) as app:
        await engine.sync(app.url, "intake-app")
        await _produce(settings.cluster.kafka_bootstrap, intake, [*good, *bad.values()])

        async def runs() -> list[str] | None:
            mine = [
                r
                for r in await engine.runs_of_function("intake-app-greet")
                if r.events and r.events[0].get("data", {}).get("tag") == tag
            ]
            done = [r for r in mine if r.status == "completed"]
            return sorted(str(r.output) for r in done) if len(done) >= 3 else None

        outputs = await eventually(runs, timeout=60, what="the intake events' runs")
    assert outputs == ["order 1", "order 2", "order 3"]

    # Every bad record is in the dead-letter topic, bytes untouched, with its reason.
    consumer = AIOKafkaConsumer(
        f"{settings.cluster.topic_prefix}dead-letter",
        bootstrap_servers=settings.cluster.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[bytes, dict[str, bytes]] = {}
    try:
        wanted = {value for value, _ in bad.values()}
        async with asyncio.timeout(60):
            async for message in consumer:
                if message.value in wanted:
                    found[message.value] = dict(message.headers)
                if set(found) == wanted:
                    break
    finally:
        await consumer.stop()
    assert len(wanted) == len(bad)
    reasons = {
        reason: found[value]["headrace.dead-letter.reason"] for reason, (value, _) in bad.items()
    }
    assert all(r.startswith(b"Rejected: ") for r in reasons.values()), reasons
    assert all(found[v]["headrace.dead-letter.topic"] == intake.encode() for v in found)
    assert b"unknown event key" in reasons["unknown_event_key"]
    assert b"no 'event-key' header" in reasons["no_event_key"]
    assert b"not valid JSON" in reasons["invalid_json"]
    assert b"no event of this record was accepted" in reasons["invalid_event"]

    async with httpx.AsyncClient() as http:
        after = intake_rejected((await http.get(f"{engine.url}/metrics")).text, intake)
    for reason in bad:
        assert after.get(reason, 0) - before.get(reason, 0) == 1, (reason, before, after)
