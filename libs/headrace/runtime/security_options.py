"""The service commands' flags for credentials, TLS and consistency of Kafka and Cassandra, and
how their values are read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from headrace.adapters.cassandra.consistency import (
    CassandraConsistency,
    check_level,
    check_serial,
)
from headrace.adapters.cassandra.security import CassandraSecurity
from headrace.adapters.kafka.security import PROTOCOLS, SASL_MECHANISMS, KafkaSecurity

_FILE = click.Path(exists=True, dir_okay=False)

# Credentials and TLS for Kafka and Cassandra. Passwords are best given by environment (from a
# mounted Secret): a flag's value shows in the process list.
security_options = [
    click.option(
        "--kafka-security-protocol",
        envvar="HEADRACE_KAFKA_SECURITY_PROTOCOL",
        type=click.Choice(PROTOCOLS, case_sensitive=False),
        default="PLAINTEXT",
        show_default=True,
        callback=lambda _ctx, _param, value: value.upper(),
    ),
    click.option(
        "--kafka-sasl-mechanism",
        envvar="HEADRACE_KAFKA_SASL_MECHANISM",
        type=click.Choice(SASL_MECHANISMS, case_sensitive=False),
        default="PLAIN",
        show_default=True,
        callback=lambda _ctx, _param, value: value.upper(),
    ),
    click.option("--kafka-sasl-username", envvar="HEADRACE_KAFKA_SASL_USERNAME", default=None),
    click.option(
        "--kafka-sasl-password",
        envvar="HEADRACE_KAFKA_SASL_PASSWORD",
        default=None,
        help="Prefer the environment variable.",
    ),
    click.option(
        "--kafka-ssl-cafile",
        envvar="HEADRACE_KAFKA_SSL_CAFILE",
        type=_FILE,
        default=None,
        help="CA bundle (PEM) the brokers' certificates are verified with; default: the system's.",
    ),
    click.option(
        "--kafka-ssl-certfile",
        envvar="HEADRACE_KAFKA_SSL_CERTFILE",
        type=_FILE,
        default=None,
        help="Client certificate (PEM), for brokers that require one.",
    ),
    click.option(
        "--kafka-ssl-keyfile", envvar="HEADRACE_KAFKA_SSL_KEYFILE", type=_FILE, default=None
    ),
    click.option("--cassandra-username", envvar="HEADRACE_CASSANDRA_USERNAME", default=None),
    click.option(
        "--cassandra-password",
        envvar="HEADRACE_CASSANDRA_PASSWORD",
        default=None,
        help="Prefer the environment variable.",
    ),
    click.option(
        "--cassandra-ssl-cafile",
        envvar="HEADRACE_CASSANDRA_SSL_CAFILE",
        type=_FILE,
        default=None,
        help="CA (PEM) to verify the nodes with; set it to connect over TLS.",
    ),
]


def _checked(check: Callable[[str], str]) -> Callable[[Any, Any, str], str]:
    """An option callback: the value upper-cased, or a usage error saying why it is refused."""

    def callback(_ctx: Any, _param: Any, value: str) -> str:
        try:
            return check(value.upper())
        except ValueError as err:
            raise click.BadParameter(str(err)) from err

    return callback


consistency_options = [
    click.option(
        "--cassandra-consistency",
        envvar="HEADRACE_CASSANDRA_CONSISTENCY",
        default=CassandraConsistency.level,
        show_default=True,
        callback=_checked(check_level),
        help="Of every read and write: LOCAL_QUORUM, QUORUM (services in several data centres) "
        "or ALL; weaker levels are refused.",
    ),
    click.option(
        "--cassandra-serial-consistency",
        envvar="HEADRACE_CASSANDRA_SERIAL_CONSISTENCY",
        default=CassandraConsistency.serial,
        show_default=True,
        callback=_checked(check_serial),
        help="Of lightweight transactions: LOCAL_SERIAL or SERIAL.",
    ),
]


def security_from(options: dict[str, Any]) -> tuple[KafkaSecurity, CassandraSecurity]:
    try:
        kafka = KafkaSecurity(
            protocol=options.get("kafka_security_protocol") or "PLAINTEXT",
            sasl_mechanism=options.get("kafka_sasl_mechanism") or "PLAIN",
            sasl_username=options.get("kafka_sasl_username") or None,
            sasl_password=options.get("kafka_sasl_password") or None,
            ssl_cafile=options.get("kafka_ssl_cafile") or None,
            ssl_certfile=options.get("kafka_ssl_certfile") or None,
            ssl_keyfile=options.get("kafka_ssl_keyfile") or None,
        )
        cassandra = CassandraSecurity(
            username=options.get("cassandra_username") or None,
            password=options.get("cassandra_password") or None,
            ssl_cafile=options.get("cassandra_ssl_cafile") or None,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    return kafka, cassandra


def consistency_from(options: dict[str, Any]) -> CassandraConsistency:
    return CassandraConsistency(
        level=options.get("cassandra_consistency") or CassandraConsistency.level,
        serial=options.get("cassandra_serial_consistency") or CassandraConsistency.serial,
    )
