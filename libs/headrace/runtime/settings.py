"""Settings of a distributed-mode process, from flags or `HEADRACE_*` environment variables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from headrace.protocol.accounts import AccountKeys

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ClusterSettings:
    kafka_bootstrap: str = "127.0.0.1:29092"
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)
    cassandra_port: int = 29042
    keyspace: str = "headrace"
    topic_prefix: str = "headrace."
    # Prepended to the consumer group ids (ingest, runner, scheduler, executor). Empty by
    # default so that existing deployments keep their groups and committed offsets; set it when
    # several deployments share one Kafka cluster, or their members join each other's groups.
    group_prefix: str = ""
    partitions: int = 12
    replication_factor: int = 1
    host: str = "127.0.0.1"
    port: int = 8288
    # Event key -> account id; without keys the Event API refuses every request.
    event_keys: tuple[tuple[str, str], ...] = ()
    # The default account's signing key, and (account, signing key) pairs for the others.
    signing_key: str | None = None
    signing_keys: tuple[tuple[str, str], ...] = ()
    backoff_scale: float = 1.0
    call_timeout_s: float = 300.0
    executor_concurrency: int = 200
    # The ingest serves the dashboard only to requests that show this token.
    dashboard_token: str | None = None
    # Topics (under the prefix) that producers publish events to, read by the ingest.
    intake_topics: tuple[str, ...] = ("intake",)

    def accounts(self) -> AccountKeys:
        return AccountKeys.of(self.event_keys, self.signing_key, self.signing_keys)


def _pairs(value: str, shape: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        left, sep, right = item.partition("=")
        if not sep or not left or not right:
            raise click.BadParameter(f"expected {shape}, got {item!r}")
        pairs.append((left, right))
    return tuple(pairs)


# Shared by `headrace dev`, where the same intake reads the same topics on the embedded log.
intake_topics_option = click.option(
    "--intake-topics",
    envvar="HEADRACE_INTAKE_TOPICS",
    default="intake",
    show_default=True,
    help="Comma-separated topics (under the prefix) producers publish events to; the ingest "
    "reads them. Empty: none.",
)


def parse_topics(value: str) -> tuple[str, ...]:
    """`--intake-topics`: comma-separated names, blanks dropped."""
    return tuple(t.strip() for t in value.split(",") if t.strip())


def cluster_options(default_port: int) -> Callable[[F], F]:
    """The flags every service takes; each also reads its `HEADRACE_*` variable."""
    options = [
        click.option(
            "--kafka-bootstrap",
            envvar="HEADRACE_KAFKA_BOOTSTRAP",
            default=ClusterSettings.kafka_bootstrap,
            show_default=True,
        ),
        click.option(
            "--cassandra-hosts",
            envvar="HEADRACE_CASSANDRA_HOSTS",
            default="127.0.0.1",
            show_default=True,
            help="Comma-separated.",
        ),
        click.option(
            "--cassandra-port",
            envvar="HEADRACE_CASSANDRA_PORT",
            type=int,
            default=ClusterSettings.cassandra_port,
            show_default=True,
        ),
        click.option(
            "--keyspace",
            envvar="HEADRACE_KEYSPACE",
            default=ClusterSettings.keyspace,
            show_default=True,
        ),
        click.option(
            "--topic-prefix",
            envvar="HEADRACE_TOPIC_PREFIX",
            default=ClusterSettings.topic_prefix,
            show_default=True,
        ),
        click.option(
            "--group-prefix",
            envvar="HEADRACE_GROUP_PREFIX",
            default=ClusterSettings.group_prefix,
            show_default=True,
            help="Prepended to consumer group ids; set it when deployments share a Kafka cluster.",
        ),
        click.option(
            "--partitions",
            envvar="HEADRACE_PARTITIONS",
            type=int,
            default=ClusterSettings.partitions,
            show_default=True,
            help="Partition count of every topic.",
        ),
        click.option(
            "--replication-factor",
            envvar="HEADRACE_REPLICATION_FACTOR",
            type=int,
            default=ClusterSettings.replication_factor,
            show_default=True,
        ),
        click.option(
            "--host", envvar="HEADRACE_HOST", default=ClusterSettings.host, show_default=True
        ),
        click.option(
            "--port",
            envvar="HEADRACE_PORT",
            type=int,
            default=default_port,
            show_default=True,
            help="HTTP port (APIs, /health, /ready).",
        ),
        click.option(
            "--event-keys",
            envvar="HEADRACE_EVENT_KEYS",
            default="",
            help="KEY=ACCOUNT,... accepted by the Event API.",
        ),
        click.option(
            "--signing-key",
            envvar="HEADRACE_SIGNING_KEY",
            default=None,
            help="The default account's signing key (apps then run as in production).",
        ),
        click.option(
            "--signing-keys",
            envvar="HEADRACE_SIGNING_KEYS",
            default="",
            help="ACCOUNT=SIGNING_KEY,... for the accounts other than the default one.",
        ),
        click.option(
            "--retry-scale",
            envvar="HEADRACE_RETRY_SCALE",
            type=float,
            default=1.0,
            show_default=True,
        ),
        click.option(
            "--call-timeout",
            envvar="HEADRACE_CALL_TIMEOUT",
            type=float,
            default=300.0,
            show_default=True,
        ),
        intake_topics_option,
        click.option(
            "--dashboard-token",
            envvar="HEADRACE_DASHBOARD_TOKEN",
            default=None,
            help="The token the dashboard asks for (ingest); without it the dashboard is off.",
        ),
    ]

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def settings_from(options: dict[str, Any]) -> ClusterSettings:
    return ClusterSettings(
        kafka_bootstrap=options["kafka_bootstrap"],
        cassandra_hosts=tuple(h.strip() for h in options["cassandra_hosts"].split(",") if h),
        cassandra_port=options["cassandra_port"],
        keyspace=options["keyspace"],
        topic_prefix=options["topic_prefix"],
        group_prefix=options.get("group_prefix", ""),
        partitions=options["partitions"],
        replication_factor=options["replication_factor"],
        host=options["host"],
        port=options["port"],
        event_keys=_pairs(options["event_keys"], "KEY=ACCOUNT"),
        signing_key=options["signing_key"],
        signing_keys=_pairs(options.get("signing_keys", ""), "ACCOUNT=SIGNING_KEY"),
        backoff_scale=options["retry_scale"],
        call_timeout_s=options["call_timeout"],
        dashboard_token=options.get("dashboard_token"),
        intake_topics=parse_topics(options.get("intake_topics", "intake")),
    )
