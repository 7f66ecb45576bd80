"""What the benchmarks share: an engine in either mode, and for distributed mode settings on
the local Kafka and Cassandra (`headrace infra up`, started if needed) with a keyspace and topics
of their own, and dropping that keyspace (each one left behind costs Cassandra heap) and those
topics afterwards; a lease on the infra while a benchmark uses it; the CPU time of its
processes."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.infra import InfraConfig, leases, status, up
from headrace.infra.cassandra import drop_keyspace, local_cluster
from headrace.runtime.settings import Settings
from headrace.testing.cluster import Cluster, cluster_test_settings, start_cluster
from headrace.testing.dev import EngineHandle, start_dev

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


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


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """The topics whose names start with `prefix` (a benchmark's own), deleted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


@contextlib.contextmanager
def infra_lease() -> Iterator[None]:
    """A lease on the local infra, as test sessions hold: the last test session to end while
    the benchmark runs does not stop Kafka and Cassandra under it. Released without stopping
    them."""
    config = InfraConfig()
    lease = leases.acquire(config.state_dir)
    try:
        yield
    finally:
        leases.release(config.state_dir, lease, lambda: None)


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of `pid` so far (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def process_pids(cluster: Cluster) -> dict[str, int]:
    """Kafka's and Cassandra's pids (if `headrace infra up` started them), each service
    process's (numbered when there are several of it), and this process's."""
    pids = {s.name: s.pid for s in status() if s.pid is not None}
    for name, count in cluster.counts.items():
        for i, proc in enumerate(cluster.of(name), 1):
            assert proc.process is not None
            pids[name if count == 1 else f"{name} {i}"] = proc.process.pid
    pids["app and sender (this process)"] = os.getpid()
    return pids


def concurrency_env(executor: int | None, app: int | None) -> dict[str, str]:
    """The executor's `--executor-concurrency` and `--app-concurrency`, where given."""
    given = {"HEADRACE_EXECUTOR_CONCURRENCY": executor, "HEADRACE_APP_CONCURRENCY": app}
    return {name: str(value) for name, value in given.items() if value}
