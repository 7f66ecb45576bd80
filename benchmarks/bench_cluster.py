"""What the distributed-mode benchmarks share: settings on the local Kafka and Cassandra
(`headrace infra up`, started if needed) with a keyspace and topics of their own, and dropping
that keyspace afterwards (each one left behind costs Cassandra heap)."""

from __future__ import annotations

import time

from headrace.infra import up
from headrace.infra.cassandra import drop_keyspace, local_cluster
from headrace.runtime.settings import ClusterSettings


def bench_settings(name: str) -> ClusterSettings:
    endpoints = up()
    assert endpoints.kafka_bootstrap and endpoints.cassandra_contact
    suffix = f"{name}_{int(time.time())}"
    return ClusterSettings(
        kafka_bootstrap=endpoints.kafka_bootstrap,
        cassandra_hosts=(endpoints.cassandra_contact[0],),
        cassandra_port=endpoints.cassandra_contact[1],
        keyspace=f"bench_{suffix}",
        topic_prefix=f"bench.{suffix}.",
        partitions=4,
    )


def drop(settings: ClusterSettings) -> None:
    cluster = local_cluster(settings.cassandra_hosts[0], settings.cassandra_port)
    try:
        drop_keyspace(cluster.connect(), settings.keyspace)
    finally:
        cluster.shutdown()
