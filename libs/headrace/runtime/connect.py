"""Connecting a distributed-mode process to Kafka and Cassandra (the only place that picks the
adapters), and preparing both (`headrace migrate`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Connection:
    log: Log
    stores: Stores
    # Raises unless Kafka and Cassandra both answer now: what `/ready` reports.
    probe: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


def cassandra_cluster(settings: Settings, *, for_migrations: bool = False) -> CassandraCluster:
    cluster = settings.cluster
    return cassandra_nodes(
        cluster.cassandra_hosts,
        cluster.cassandra_port,
        consistency=cluster.cassandra_consistency,
        security=cluster.cassandra_security,
        for_migrations=for_migrations,
    )


def kafka_log(settings: Settings) -> KafkaLog:
    cluster = settings.cluster
    return KafkaLog(
        cluster.kafka_bootstrap,
        group_prefix=cluster.consumer_group_prefix,
        partitions=settings.partitions,
        replication_factor=cluster.replication_factor,
        security=cluster.kafka_security,
        retention_ms={
            Topics(cluster.topic_prefix).dead_letter: settings.dead_letter_retention_s * 1000
        },
    )


def _topics(settings: Settings) -> list[str]:
    """Headrace's own topics and the intake topics (producers may publish before an ingest
    runs)."""
    topics = Topics(settings.cluster.topic_prefix)
    return [*topics.all, *(topics.intake(name) for name in settings.intake_topics)]


async def connect_cluster(settings: Settings) -> Connection:
    """Raise (to be retried) until both answer; the keyspace must have been migrated."""
    cluster = cassandra_cluster(settings)
    try:
        session = await asyncio.to_thread(cassandra_session, cluster)
        stores = await asyncio.to_thread(
            open_stores,
            session,
            settings.cluster.keyspace,
            retention_s=settings.retention_s,
            consistency=settings.cluster.cassandra_consistency,
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
@service_command(default_port=0)
def migrate(settings: Settings) -> None:
    """Create the topics and apply the Cassandra schema (idempotent; run before the services)."""
    try:
        _migrate(settings)
    except AuthenticationFailed as err:
        raise click.ClickException(str(err)) from err


def _migrate(settings: Settings) -> None:
    keyspace = settings.cluster.keyspace
    cluster = cassandra_cluster(settings, for_migrations=True)
    try:
        session = cassandra_session(cluster)
        replication = {
            "class": "SimpleStrategy",
            "replication_factor": settings.cluster.replication_factor,
        }
        applied = migrate_schema(session, keyspace, replication)
    finally:
        cluster.shutdown()
    click.echo(f"cassandra keyspace {keyspace}: migrations applied {applied or 'none'}")

    async def topics() -> None:
        log = kafka_log(settings)
        try:
            await log.ensure_topics(_topics(settings))
        finally:
            await log.close()

    asyncio.run(topics())
    click.echo(f"kafka topics {', '.join(_topics(settings))}: {settings.partitions} partitions")
