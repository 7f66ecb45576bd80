"""A cron schedule fires once per tick with two scheduler processes, and after each is killed.

A cluster of its own (its own topics and keyspace), so the session's cluster is not disturbed:
ingest, a runner, two schedulers and an executor. The first scheduler is killed (SIGKILL), a
replacement joins, then the second is killed: whichever owned the account's partition, the
owner has died once, and a tick it fired but had not yet deleted is fired again by the next.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from pathlib import Path

import inngest
import pytest

from headrace.messages.state import RunState
from headrace.runtime.settings import Settings
from headrace.testing.cluster import start_cluster
from headrace.testing.dev import EngineHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client

pytestmark = [pytest.mark.kafka, pytest.mark.cassandra]

FN_ID = "cron-ha-app-tick"


async def _runs_at_least(engine: EngineHandle, count: int) -> list[RunState]:
    async def probe() -> list[RunState] | None:
        runs = await engine.runs_of_function(FN_ID)
        return runs if len(runs) >= count else None

    # A killed member's partitions move after Kafka's session timeout (10 s) and a rebalance.
    return await eventually(probe, timeout=60, what=f"{count} cron runs")


async def test_a_cron_schedule_fires_once_per_tick_with_two_schedulers_one_killed(
    distributed_settings: Settings, tmp_path: Path, drop_keyspace: Callable[[str], None]
) -> None:
    base = distributed_settings.cluster
    connection = dataclasses.replace(
        base, keyspace=f"{base.keyspace}_cron", topic_prefix=f"{base.topic_prefix}cron."
    )
    settings = dataclasses.replace(distributed_settings, cluster=connection)
    cluster, engine = await start_cluster(
        settings,
        tmp_path / "logs",
        counts={"ingest": 1, "runner": 1, "scheduler": 2, "executor": 1},
    )
    try:
        client = make_client(engine.url, "cron-ha-app")

        @client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="* * * * * *"))
        async def tick(ctx: inngest.Context) -> None:
            return None

        with ServedApp(client, [tick]) as app:
            await engine.sync(app.url, "cron-ha-app")
            first, second = cluster.of("scheduler")
            seen = len(await _runs_at_least(engine, 3))
            cluster.kill(first)
            seen = len(await _runs_at_least(engine, seen + 5))
            await cluster.add("scheduler")
            # Counted again: ticks kept firing while the replacement started, and the runs to
            # wait for are those after this kill.
            seen = len(await engine.runs_of_function(FN_ID))
            cluster.kill(second)
            runs = await _runs_at_least(engine, seen + 5)
    finally:
        await engine.stop()
        drop_keyspace(settings.cluster.keyspace)

    per_tick = collections.Counter(str(r.events[0]["data"]["scheduledAt"]) for r in runs)
    assert all(count == 1 for count in per_tick.values()), per_tick
