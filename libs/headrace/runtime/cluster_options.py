"""The flags every service command takes, each also read from its `HEADRACE_*` variable, and the
ClusterSettings they make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from headrace.core.retention import DEFAULT_DEAD_LETTER_RETENTION_S, DEFAULT_RETENTION_S
from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.flow.client_rate import ClientRate
from headrace.runtime.security_options import (
    consistency_from,
    consistency_options,
    security_from,
    security_options,
)
from headrace.runtime.settings import DEFAULT_RATE_LIMIT, ClusterSettings
from headrace.runtime.shared_options import (
    DEFAULT_EXECUTOR_CONCURRENCY,
    dead_letter_retention_option,
    executor_concurrency_option,
    intake_topics_option,
    max_steps_option,
    parse_topics,
    rate_limit_options,
    require_signed_answers_option,
    require_signing_key,
    retention_option,
    retry_interval_option,
)

F = TypeVar("F", bound=Callable[..., Any])


def _pairs(value: str, shape: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        left, sep, right = item.partition("=")
        if not sep or not left or not right:
            raise click.BadParameter(f"expected {shape}, got {item!r}")
        pairs.append((left, right))
    return tuple(pairs)


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
            default=None,
            help="Prepended to consumer group ids.  [default: the topic prefix]",
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
            "--call-timeout",
            envvar="HEADRACE_CALL_TIMEOUT",
            type=float,
            default=300.0,
            show_default=True,
        ),
        click.option(
            "--endpoint-timeout",
            envvar="HEADRACE_ENDPOINT_TIMEOUT",
            type=float,
            default=3600.0,
            show_default=True,
            help="Seconds a Durable Endpoint's request may hold its run before the run fails.",
        ),
        intake_topics_option,
        max_steps_option,
        executor_concurrency_option,
        retry_interval_option,
        require_signed_answers_option,
        retention_option,
        dead_letter_retention_option,
        click.option(
            "--dashboard-token",
            envvar="HEADRACE_DASHBOARD_TOKEN",
            default=None,
            help="The token the dashboard asks for (ingest); without it the dashboard is off.",
        ),
        *rate_limit_options(*DEFAULT_RATE_LIMIT),
        *security_options,
        *consistency_options,
    ]

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def settings_from(options: dict[str, Any]) -> ClusterSettings:
    kafka_security, cassandra_security = security_from(options)
    signing_keys = _pairs(options.get("signing_keys", ""), "ACCOUNT=SIGNING_KEY")
    require_signed = bool(options.get("require_signed_answers"))
    require_signing_key(require_signed, bool(options["signing_key"] or signing_keys))
    return ClusterSettings(
        kafka_bootstrap=options["kafka_bootstrap"],
        cassandra_hosts=tuple(h.strip() for h in options["cassandra_hosts"].split(",") if h),
        cassandra_port=options["cassandra_port"],
        keyspace=options["keyspace"],
        topic_prefix=options["topic_prefix"],
        group_prefix=options.get("group_prefix"),
        partitions=options["partitions"],
        replication_factor=options["replication_factor"],
        host=options["host"],
        port=options["port"],
        event_keys=_pairs(options["event_keys"], "KEY=ACCOUNT"),
        signing_key=options["signing_key"],
        signing_keys=signing_keys,
        require_signed_answers=require_signed,
        retry_interval_s=options.get("retry_interval"),
        call_timeout_s=options["call_timeout"],
        endpoint_timeout_s=options["endpoint_timeout"],
        max_steps=options.get("max_steps", DEFAULT_MAX_STEPS),
        executor_concurrency=options.get("executor_concurrency", DEFAULT_EXECUTOR_CONCURRENCY),
        dashboard_token=options.get("dashboard_token"),
        intake_topics=parse_topics(options.get("intake_topics", "intake")),
        retention_s=options.get("retention", DEFAULT_RETENTION_S),
        dead_letter_retention_s=options.get(
            "dead_letter_retention", DEFAULT_DEAD_LETTER_RETENTION_S
        ),
        kafka_security=kafka_security,
        cassandra_security=cassandra_security,
        rate_limit=ClientRate(options["rate_limit"], options["rate_burst"]),
        cassandra_consistency=consistency_from(options),
    )
