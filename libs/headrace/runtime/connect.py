"""Connecting a distributed-mode process to Kafka and Cassandra (the only place that picks the
adapters), and preparing both (`headrace migrate`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import click

from headrace.adapters.cassandra.connect import (
    CassandraCluster,
    cassandra_session,
    open_stores,
)
from headrace.adapters.cassandra.connect import cassandra_cluster as cassandra_nodes
from headrace.adapters.cassandra.schema import migrate as migrate_schema
from headrace.adapters.kafka.log import KafkaLog
from headrace.core.errors import AuthenticationFailed
from headrace.messages.topics import Topics
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.cluster_options import cluster_options, settings_from
from headrace.runtime.settings import ClusterSettings

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Connection:
    log: Log
    stores: Stores
    # Raises unless Kafka and Cassandra both answer now: what `/ready` reports.
    probe: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


def cassandra_cluster(
    settings: ClusterSettings, *, for_migrations: bool = False
) -> CassandraCluster:
    return cassandra_nodes(
        settings.cassandra_hosts,
        settings.cassandra_port,
        consistency=settings.cassandra_consistency,
        security=settings.cassandra_security,
        for_migrations=for_migrations,
    )


def kafka_log(settings: ClusterSettings) -> KafkaLog:
    return KafkaLog(
        settings.kafka_bootstrap,
        group_prefix=settings.consumer_group_prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        security=settings.kafka_security,
        retention_ms={
            Topics(settings.topic_prefix).dead_letter: settings.dead_letter_retention_s * 1000
        },
    )


def _topics(settings: ClusterSettings) -> list[str]:
    """Headrace's own topics and the intake topics (producers may publish before an ingest
    runs)."""
    topics = Topics(settings.topic_prefix)
    return [*topics.all, *(topics.intake(name) for name in settings.intake_topics)]


async def connect_cluster(settings: ClusterSettings) -> Connection:
    """Raise (to be retried) until both answer; the keyspace must have been migrated."""
    cluster = cassandra_cluster(settings)
    try:
        session = await asyncio.to_thread(cassandra_session, cluster)
        stores = await asyncio.to_thread(
            open_stores,
            session,
            settings.keyspace,
            retention_s=settings.retention_s,
            consistency=settings.cassandra_consistency,
        )
    except BaseException:
        await asyncio.to_thread(cluster.shutdown)
        raise
    log = kafka_log(settings)
    try:
        await log.ensure_topics(_topics(settings))
    except BaseException:
        await log.close()
        await asyncio.to_thread(cluster.shutdown)
        raise

    async def probe() -> None:
        await asyncio.wait_for(stores.ping(), PROBE_TIMEOUT_S)
        await asyncio.wait_for(log.ping(), PROBE_TIMEOUT_S)

    async def close() -> None:
        await log.close()
        await asyncio.to_thread(cluster.shutdown)

    return Connection(log, stores, probe, close)


@click.command()
@cluster_options(default_port=0)
def migrate(**options: Any) -> None:
    """Create the topics and apply the Cassandra schema (idempotent; run before the services)."""
    settings = settings_from(options)
    try:
        _migrate(settings)
    except AuthenticationFailed as err:
        raise click.ClickException(str(err)) from err


def _migrate(settings: ClusterSettings) -> None:
    cluster = cassandra_cluster(settings, for_migrations=True)
    try:
        session = cassandra_session(cluster)
        replication = {"class": "SimpleStrategy", "replication_factor": settings.replication_factor}
        applied = migrate_schema(session, settings.keyspace, replication)
    finally:
        cluster.shutdown()
    click.echo(f"cassandra keyspace {settings.keyspace}: migrations applied {applied or 'none'}")

    async def topics() -> None:
        log = kafka_log(settings)
        try:
            await log.ensure_topics(_topics(settings))
        finally:
            await log.close()

    asyncio.run(topics())
    click.echo(f"kafka topics {', '.join(_topics(settings))}: {settings.partitions} partitions")
