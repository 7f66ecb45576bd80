"""Rebalance: a second scheduler joins while hundreds of runs sleep, and takes over partitions
with their timers. No timer is lost (every run completes) and none fires twice (one resume per
sleep on the `work` topic, and the step after the sleep runs once per run)."""

from __future__ import annotations

import collections
import datetime
import json

import inngest
import pytest

from headrace.adapters.kafka import KafkaLog
from headrace.messages.records import WORK_CODEC, Resume
from headrace.messages.topics import Topics
from headrace.runtime.settings import Settings
from headrace.testing.cluster import Cluster
from headrace.testing.dev import EngineHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client

pytestmark = [pytest.mark.kafka, pytest.mark.cassandra, pytest.mark.e2e]

RUNS = 200


async def _sleep_resumes(settings: Settings) -> collections.Counter[str]:
    """Resumes of sleeps published on `work`, per run: read from the start by a group of ours."""
    log = KafkaLog(settings.cluster.kafka_bootstrap, partitions=settings.partitions)
    consumer = log.consumer(Topics(settings.cluster.topic_prefix).work, "test-observer")
    counts: collections.Counter[str] = collections.Counter()
    try:
        await consumer.start()
        while records := await consumer.poll(500, timeout_ms=2_000):
            for record in records:
                item = WORK_CODEC.decode(record.value)
                if isinstance(item, Resume) and item.reason == "sleep":
                    counts[item.run_id] += 1
    finally:
        await log.close()
    return counts


async def test_a_scheduler_that_joins_takes_over_timers_and_fires_each_once(
    cluster: tuple[Cluster, EngineHandle], cluster_settings: Settings
) -> None:
    procs, engine = cluster
    before: collections.Counter[str] = collections.Counter()
    after: collections.Counter[str] = collections.Counter()
    client = make_client(engine.url, "rebalance-app")

    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="rebalance/go"))
    async def sleeper(ctx: inngest.Context) -> str:
        await ctx.step.run("before", lambda: before.update([ctx.run_id]))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=15 + int(ctx.event.data["n"]) % 5))
        await ctx.step.run("after", lambda: after.update([ctx.run_id]))
        return "done"

    with ServedApp(client, [sleeper]) as app:
        await engine.sync(app.url, "rebalance-app")
        event_ids: list[str] = []
        for chunk in range(0, RUNS, 100):
            event_ids += await engine.send(
                *({"name": "rebalance/go", "data": {"n": n}} for n in range(chunk, chunk + 100))
            )

        async def all_sleeping() -> bool:
            return len(before) == RUNS

        await eventually(all_sleeping, timeout=60, what="every run to reach its sleep")
        assert not after, "no sleep may end before the second scheduler joins"
        joined = await procs.add("scheduler")

        run_ids = [await engine.run_of_event(e, timeout=60) for e in event_ids]
        for run_id in run_ids:
            run = await engine.finished(run_id, timeout=120)
            assert run.status == "completed", (run_id, run.status, run.output)

    took_over = [
        json.loads(line)
        for line in (procs.log_dir / f"scheduler-{joined.port}.log").read_text().splitlines()
        if '"partitions assigned"' in line
    ]
    assert any(entry["partitions"] for entry in took_over), "the new scheduler got no partition"
    assert set(after) == set(run_ids)
    assert set(after.values()) == {1}, "a step after a sleep ran twice"
    resumes = await _sleep_resumes(cluster_settings)
    assert {run_id: resumes[run_id] for run_id in run_ids} == dict.fromkeys(run_ids, 1)
