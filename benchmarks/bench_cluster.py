"""What the benchmarks share: an engine in either mode, and for distributed mode settings on
the local Kafka and Cassandra (`headrace infra up`, started if needed) with a keyspace and topics
of their own, and dropping that keyspace afterwards (each one left behind costs Cassandra
heap)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.infra import up
from headrace.infra.cassandra import drop_keyspace, local_cluster
from headrace.runtime.settings import Settings
from headrace.testing.cluster import cluster_test_settings, start_cluster
from headrace.testing.dev import EngineHandle, start_dev


@contextlib.asynccontextmanager
async def engine_in(
    mode: str,
    name: str,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    counts: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[EngineHandle]:
    """`headrace dev` (mode "dev") or processes per service (distributed, on settings named
    after `name`: `counts` of each, `env` more settings), in a temporary directory; stopped,
    and its keyspace dropped, at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = None
        if mode == "dev":
            engine = await start_dev(Path(tmp) / "state", max_steps=max_steps)
        else:
            settings = bench_settings(name)
            _, engine = await start_cluster(
                settings,
                Path(tmp) / "logs",
                counts=counts,
                env={"HEADRACE_MAX_STEPS": str(max_steps), **(env or {})},
            )
        try:
            yield engine
        finally:
            await engine.stop()
            if settings is not None:
                drop(settings)


def bench_settings(name: str) -> Settings:
    endpoints = up()
    assert endpoints.kafka_bootstrap and endpoints.cassandra_contact
    suffix = f"{name}_{int(time.time())}"
    return cluster_test_settings(
        endpoints.kafka_bootstrap,
        endpoints.cassandra_contact,
        keyspace=f"bench_{suffix}",
        topic_prefix=f"bench.{suffix}.",
        partitions=4,
    )


def drop(settings: Settings) -> None:
    cluster = local_cluster(settings.cluster.cassandra_hosts[0], settings.cluster.cassandra_port)
    try:
        drop_keyspace(cluster.connect(), settings.cluster.keyspace)
    finally:
        cluster.shutdown()
