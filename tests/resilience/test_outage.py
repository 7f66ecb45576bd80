"""Outages: with runs in flight, stop Cassandra for longer than any timeout of the services,
then Kafka. The services stay up, report not-ready while a dependency is away, and every run
completes once both are back.

The test runs on a Kafka and a Cassandra of its own (other ports, its own state directory):
stopping the shared ones would take them from every other test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from workload import (
    Executions,
    all_completed,
    check_no_stored_step_ran_again,
    durable_function,
    offering_go,
    start_runs,
)

from headrace.infra import InfraConfig, down, start_each
from headrace.testing.cluster import Cluster, cluster_test_settings, start_cluster
from headrace.testing.dev import TEST_RETRY_INTERVAL_S, EngineHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client

pytestmark = [pytest.mark.kafka, pytest.mark.cassandra, pytest.mark.e2e]

RUNS = 100
# Longer than every timeout that decides what a service does in an outage, so each one expires
# while the store is away: the consumers' session (10 s, KafkaLog), the Cassandra driver's
# request timeout (10 s) and connect timeout (5 s), the consume loops' retry backoff at its
# longest (5 s, runtime/consume.py) and the readiness probe (every 2 s, 3 s each,
# runtime/process.py). A longer outage changes nothing more: the loops only retry again at
# their longest backoff. (It was 30 s; each stop also lasts the store's restart, some 10 s.
# The producer's request timeout, 40 s, was not reached at 30 s either: a publish waits.)
OUTAGE_S = 15
# How long the services may take to notice (a probe every 2 s, on a busy machine); should
# they take longer than OUTAGE_S, the outage lasts until they have.
NOT_READY_WITHIN_S = 30


@pytest.fixture
async def private_cluster(
    private_infra: InfraConfig, tmp_path: Path
) -> AsyncIterator[tuple[Cluster, EngineHandle]]:
    host = private_infra.host
    settings = cluster_test_settings(
        f"{host}:{private_infra.kafka_port}",
        (host, private_infra.cassandra_port),
        keyspace="outage",
        partitions=4,
        retry_interval_s=TEST_RETRY_INTERVAL_S,
        call_timeout_s=20.0,
    )
    cluster, engine = await start_cluster(settings, tmp_path / "logs")
    try:
        yield cluster, engine
    finally:
        await engine.stop()


async def _readiness(cluster: Cluster) -> dict[str, bool]:
    async with httpx.AsyncClient(timeout=5) as client:
        states = {}
        for proc in cluster.procs:
            response = await client.get(f"http://127.0.0.1:{proc.port}/ready")
            states[f"{proc.name}:{proc.port}"] = response.status_code == 200
        return states


async def _outage(cluster: Cluster, config: InfraConfig, component: str) -> None:
    """Stop `component` for OUTAGE_S; every service must turn not-ready, then ready again."""
    await asyncio.to_thread(down, config, [component])
    stopped = time.monotonic()

    async def none_ready() -> bool:
        return not any((await _readiness(cluster)).values())

    await eventually(
        none_ready, timeout=NOT_READY_WITHIN_S, what=f"every service not ready without {component}"
    )
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    [result] = (await asyncio.to_thread(start_each, config, [component])).values()
    assert not isinstance(result, Exception), result

    async def all_ready() -> bool:
        return all((await _readiness(cluster)).values())

    await eventually(all_ready, timeout=90, what=f"every service ready again after {component}")


async def test_runs_survive_cassandra_then_kafka_stopped_past_every_timeout(
    private_cluster: tuple[Cluster, EngineHandle], private_infra: InfraConfig
) -> None:
    cluster, engine = private_cluster
    executions = Executions()
    client = make_client(engine.url, "outage-app")
    with ServedApp(client, [durable_function(client, executions)]) as app:
        await engine.sync(app.url, "outage-app")
        event_ids = await start_runs(engine, RUNS)

        async def busy() -> bool:
            return len(executions.of) >= RUNS // 2

        async with offering_go(engine, RUNS):
            await eventually(busy, timeout=60, what="runs in flight")
            await _outage(cluster, private_infra, "cassandra")
            await eventually(busy, timeout=60, what="runs in flight")
            await _outage(cluster, private_infra, "kafka")
            run_ids = await all_completed(engine, event_ids)
    await check_no_stored_step_ran_again(engine, run_ids, executions)
    twice = executions.twice()
    print(f"outage test: {len(twice)} of {3 * RUNS} steps ran more than once")
