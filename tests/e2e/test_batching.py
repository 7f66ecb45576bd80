"""Event batching: one run receives every event of its batch, once."""

from __future__ import annotations

import collections
import datetime

import httpx
import inngest
import pytest

from headrace.testing.dev import DevHandle
from headrace.testing.sdk_app import ServedApp, make_client


async def test_a_full_batch_starts_one_run_with_all_its_events(dev: DevHandle) -> None:
    client = make_client(dev.url, "batch-app")
    received: list[list[int]] = []

    @client.create_function(
        fn_id="batched",
        batch_events=inngest.Batch(max_size=5, timeout=datetime.timedelta(seconds=60)),
        trigger=inngest.TriggerEvent(event="test/item"),
    )
    async def batched(ctx: inngest.Context) -> int:
        received.append([e.data["n"] for e in ctx.events])
        return len(ctx.events)

    with ServedApp(client, [batched]) as app:
        await dev.sync(app.url, "batch-app")
        ids = await dev.send(*({"name": "test/item", "data": {"n": n}} for n in range(10)))
        first = await dev.finished(await dev.run_of_event(ids[0]))
        second = await dev.finished(await dev.run_of_event(ids[9]))

    assert first.output == 5 and second.output == 5
    assert sorted(n for batch in received for n in batch) == list(range(10))
    for event_id in ids:
        assert len(await dev.stores.runs_for_event(event_id)) == 1


@pytest.mark.fake_clock
async def test_a_batch_starts_at_its_timeout_and_keys_split_batches(dev: DevHandle) -> None:
    client = make_client(dev.url, "batch-key-app")
    received: collections.defaultdict[str, list[int]] = collections.defaultdict(list)

    @client.create_function(
        fn_id="by-customer",
        batch_events=inngest.Batch(
            max_size=50, timeout=datetime.timedelta(seconds=1), key="event.data.customer"
        ),
        trigger=inngest.TriggerEvent(event="bat/order"),
    )
    async def by_customer(ctx: inngest.Context) -> None:
        for event in ctx.events:
            received[event.data["customer"]].append(event.data["n"])

    with ServedApp(client, [by_customer]) as app:
        await dev.sync(app.url, "batch-key-app")
        ids = await dev.send(
            *({"name": "bat/order", "data": {"customer": c, "n": n}} for n, c in enumerate("abab"))
        )
        run_a = await dev.finished(await dev.run_of_event(ids[0], step_s=0.25), step_s=0.25)
        run_b = await dev.finished(await dev.run_of_event(ids[1], step_s=0.25), step_s=0.25)

    assert run_a.run_id != run_b.run_id
    assert run_a.event_ids == [ids[0], ids[2]] and run_b.event_ids == [ids[1], ids[3]]
    assert dict(received) == {"a": [0, 2], "b": [1, 3]}


async def test_a_batch_too_large_to_send_inline_is_fetched_by_the_sdk(dev: DevHandle) -> None:
    client = make_client(dev.url, "big-batch-app")
    sizes: list[int] = []

    @client.create_function(
        fn_id="big-batch",
        batch_events=inngest.Batch(max_size=6, timeout=datetime.timedelta(seconds=10)),
        trigger=inngest.TriggerEvent(event="test/blob"),
    )
    def big_batch(ctx: inngest.ContextSync) -> None:
        sizes.extend(len(e.data["blob"]) for e in ctx.events)

    with ServedApp(client, [big_batch]) as app:
        await dev.sync(app.url, "big-batch-app")
        blob = "b" * (1024 * 1024)
        ids = await dev.send(*({"name": "test/blob", "data": {"blob": blob}} for _ in range(6)))
        run = await dev.finished(await dev.run_of_event(ids[0]), timeout=60)

    assert run.status == "completed"
    assert sizes == [1024 * 1024] * 6
    async with httpx.AsyncClient() as http:
        batch = (await http.get(f"{dev.url}/v0/runs/{run.run_id}/batch")).json()
    assert len(batch) == 6
