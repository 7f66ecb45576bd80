"""Resilience tests: each gets a cluster of its own, since processes get killed.

A test marked `@pytest.mark.cluster(partitions=8, env={...})` gets that many partitions (else 4)
and that environment for every service."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from headrace.infra import InfraConfig, down, up
from headrace.runtime.settings import Settings
from headrace.testing.cluster import Cluster, cluster_test_settings, start_cluster
from headrace.testing.dev import TEST_RETRY_INTERVAL_S, EngineHandle
from headrace.testing.sdk_app import free_port

# The fault schedule (its kills, `owner_twice` included) holds the suite's line on crashes; the
# kill schedule it grew from runs when asked for (`HEADRACE_KILL_SCHEDULE=1`): kills alone, more
# of them, on 8 partitions (benchmarks/fault_schedule.md).
collect_ignore = [] if os.environ.get("HEADRACE_KILL_SCHEDULE") else ["test_kill_schedule.py"]


@pytest.fixture
def private_infra(tmp_path: Path) -> Iterator[InfraConfig]:
    """A Kafka and a Cassandra of the test's own (other ports, its own state directory), for
    tests that stop or restart them: stopping the shared ones would take them from every other
    test."""
    config = InfraConfig(
        state_dir=tmp_path / "infra",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        cassandra_port=free_port(),
        cassandra_storage_port=free_port(),
    )
    try:
        up(config)
        yield config
    finally:
        down(config, wipe=True)


@pytest.fixture
def cluster_settings(
    kafka_bootstrap: str, cassandra_contact: tuple[str, int], request: pytest.FixtureRequest
) -> Settings:
    marker = request.node.get_closest_marker("cluster")
    partitions = marker.kwargs.get("partitions", 4) if marker is not None else 4
    name = request.node.name.replace("-", "_")[:30] + "_" + uuid.uuid4().hex[:6]
    return cluster_test_settings(
        kafka_bootstrap,
        cassandra_contact,
        keyspace=f"r_{name}"[:48],
        topic_prefix=f"r.{name}.",
        partitions=partitions,
        retry_interval_s=TEST_RETRY_INTERVAL_S,
        call_timeout_s=20.0,
    )


@pytest.fixture
async def cluster(
    cluster_settings: Settings,
    tmp_path: Path,
    drop_keyspace: Callable[[str], None],
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Cluster, EngineHandle]]:
    marker = request.node.get_closest_marker("cluster")
    env = marker.kwargs.get("env", {}) if marker is not None else {}
    cluster, engine = await start_cluster(cluster_settings, tmp_path / "logs", env=env)
    try:
        yield cluster, engine
    finally:
        await engine.stop()
        drop_keyspace(cluster_settings.cluster.keyspace)
