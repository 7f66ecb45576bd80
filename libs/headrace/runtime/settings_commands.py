"""How a command's flags become its Settings: `dev_command` and `service_command` give a command
the flags of its mode (runtime/options.py) and call it with the Settings read from them;
`read_dev_settings` and `read_service_settings` are that reading, from a command's parsed
parameters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import click

from headrace.adapters.cassandra.consistency import CassandraConsistency
from headrace.adapters.cassandra.security import CassandraSecurity
from headrace.adapters.kafka.security import KafkaSecurity
from headrace.flow.client_rate import ClientRate
from headrace.runtime.cluster_options import cluster_options
from headrace.runtime.options import Option, embedded_options, engine_options
from headrace.runtime.settings import (
    DEV_SETTINGS,
    SERVICE_SETTINGS,
    ClusterConnection,
    EmbeddedStorage,
    Settings,
)

Run = Callable[[Settings], None]
Read = Callable[[Mapping[str, Any]], Settings]


def dev_command(run: Run) -> Callable[..., None]:
    """`headrace dev`'s flags, read into the Settings `run` is called with."""
    options = [*embedded_options, *engine_options(DEV_SETTINGS, DEV_SETTINGS.port)]
    return _reading(options, read_dev_settings, run)


def service_command(default_port: int) -> Callable[[Run], Callable[..., None]]:
    """A service command's flags (`migrate`'s too), read into the Settings `run` is called
    with; `default_port` is the command's own."""
    options = [*cluster_options, *engine_options(SERVICE_SETTINGS, default_port)]
    return lambda run: _reading(options, read_service_settings, run)


def _reading(options: list[Option[Any]], read: Read, run: Run) -> Callable[..., None]:
    @functools.wraps(run)
    def command(**params: Any) -> None:
        run(read(params))

    for option in reversed(options):
        command = option(command)
    return command


def read_dev_settings(params: Mapping[str, Any]) -> Settings:
    embedded = EmbeddedStorage(
        state_dir=None if params["in_memory"] else params["state_dir"],
        sdk_urls=params["sdk_urls"],
        poll_interval_s=params["poll_interval"],
    )
    return replace(_engine(DEV_SETTINGS, params), embedded=embedded)


def read_service_settings(params: Mapping[str, Any]) -> Settings:
    try:
        kafka_security = KafkaSecurity(
            protocol=params["kafka_security_protocol"],
            sasl_mechanism=params["kafka_sasl_mechanism"],
            sasl_username=params["kafka_sasl_username"] or None,
            sasl_password=params["kafka_sasl_password"] or None,
            ssl_cafile=params["kafka_ssl_cafile"] or None,
            ssl_certfile=params["kafka_ssl_certfile"] or None,
            ssl_keyfile=params["kafka_ssl_keyfile"] or None,
        )
        cassandra_security = CassandraSecurity(
            username=params["cassandra_username"] or None,
            password=params["cassandra_password"] or None,
            ssl_cafile=params["cassandra_ssl_cafile"] or None,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    cluster = ClusterConnection(
        kafka_bootstrap=params["kafka_bootstrap"],
        cassandra_hosts=params["cassandra_hosts"],
        cassandra_port=params["cassandra_port"],
        keyspace=params["keyspace"],
        topic_prefix=params["topic_prefix"],
        group_prefix=params["group_prefix"],
        replication_factor=params["replication_factor"],
        kafka_security=kafka_security,
        cassandra_security=cassandra_security,
        cassandra_consistency=CassandraConsistency(
            level=params["cassandra_consistency"], serial=params["cassandra_serial_consistency"]
        ),
    )
    return replace(
        _engine(SERVICE_SETTINGS, params), partitions=params["partitions"], cluster=cluster
    )


def _engine(mode: Settings, params: Mapping[str, Any]) -> Settings:
    """The engine's flags over the mode's settings."""
    signing_keys = params["signing_keys"]
    if params["require_signed_answers"] and not (params["signing_key"] or signing_keys):
        # No call would be signed, so no answer would be.
        raise click.UsageError("--require-signed-answers needs a signing key")
    return replace(
        mode,
        host=params["host"],
        port=params["port"],
        event_keys=(*params["event_key_flags"], *params["event_key_list"]),
        signing_key=params["signing_key"],
        signing_keys=signing_keys,
        require_signed_answers=params["require_signed_answers"],
        retry_interval_s=params["retry_interval"],
        call_timeout_s=params["call_timeout"],
        endpoint_timeout_s=params["endpoint_timeout"],
        executor_concurrency=params["executor_concurrency"],
        app_concurrency=params["app_concurrency"],
        max_steps=params["max_steps"],
        dashboard_token=params["dashboard_token"],
        intake_topics=params["intake_topics"],
        retention_s=params["retention"],
        dead_letter_retention_s=params["dead_letter_retention"],
        rate_limit=ClientRate(params["rate_limit"], params["rate_burst"]),
        log_format=params["log_format"],
        log_level=params["log_level"],
    )
