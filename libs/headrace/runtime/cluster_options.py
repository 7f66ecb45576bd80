"""The cluster's flags (runtime/options.py has the rest of the table): Kafka, Cassandra, their
credentials, TLS and consistency, and `--partitions`, on the service commands and `migrate`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from headrace.adapters.cassandra.consistency import check_level, check_serial
from headrace.adapters.kafka.security import PROTOCOLS, SASL_MECHANISMS
from headrace.runtime.options import Option, comma_list, flag
from headrace.runtime.settings import SERVICE_SETTINGS

_FILE = click.Path(exists=True, dir_okay=False)


def _upper(_ctx: Any, _param: Any, value: str) -> str:
    return value.upper()


def _checked(check: Callable[[str], str]) -> Callable[[Any, Any, str], str]:
    """A callback: the value upper-cased, or a usage error saying why it is refused."""

    def callback(_ctx: Any, _param: Any, value: str) -> str:
        try:
            return check(value.upper())
        except ValueError as err:
            raise click.BadParameter(str(err)) from err

    return callback


_CLUSTER = SERVICE_SETTINGS.cluster

cluster_options: list[Option[Any]] = [
    flag("--kafka-bootstrap", envvar="HEADRACE_KAFKA_BOOTSTRAP", default=_CLUSTER.kafka_bootstrap),
    flag(
        "--cassandra-hosts",
        envvar="HEADRACE_CASSANDRA_HOSTS",
        default=",".join(_CLUSTER.cassandra_hosts),
        callback=comma_list,
        help="Comma-separated.",
    ),
    flag(
        "--cassandra-port",
        envvar="HEADRACE_CASSANDRA_PORT",
        type=int,
        default=_CLUSTER.cassandra_port,
    ),
    flag("--keyspace", envvar="HEADRACE_KEYSPACE", default=_CLUSTER.keyspace),
    flag("--topic-prefix", envvar="HEADRACE_TOPIC_PREFIX", default=_CLUSTER.topic_prefix),
    flag(
        "--group-prefix",
        envvar="HEADRACE_GROUP_PREFIX",
        default=_CLUSTER.group_prefix,
        show_default=False,
        help="Prepended to consumer group ids.  [default: the topic prefix]",
    ),
    flag(
        "--partitions",
        envvar="HEADRACE_PARTITIONS",
        type=int,
        default=SERVICE_SETTINGS.partitions,
        help="Partition count of every topic.",
    ),
    flag(
        "--replication-factor",
        envvar="HEADRACE_REPLICATION_FACTOR",
        type=int,
        default=_CLUSTER.replication_factor,
    ),
    # Credentials and TLS. Passwords are best given by environment (from a mounted Secret): a
    # flag's value shows in the process list.
    flag(
        "--kafka-security-protocol",
        envvar="HEADRACE_KAFKA_SECURITY_PROTOCOL",
        type=click.Choice(PROTOCOLS, case_sensitive=False),
        default=_CLUSTER.kafka_security.protocol,
        callback=_upper,
    ),
    flag(
        "--kafka-sasl-mechanism",
        envvar="HEADRACE_KAFKA_SASL_MECHANISM",
        type=click.Choice(SASL_MECHANISMS, case_sensitive=False),
        default=_CLUSTER.kafka_security.sasl_mechanism,
        callback=_upper,
    ),
    flag("--kafka-sasl-username", envvar="HEADRACE_KAFKA_SASL_USERNAME", default=None),
    flag(
        "--kafka-sasl-password",
        envvar="HEADRACE_KAFKA_SASL_PASSWORD",
        default=None,
        help="Prefer the environment variable.",
    ),
    flag(
        "--kafka-ssl-cafile",
        envvar="HEADRACE_KAFKA_SSL_CAFILE",
        type=_FILE,
        default=None,
        help="CA bundle (PEM) the brokers' certificates are verified with; default: the system's.",
    ),
    flag(
        "--kafka-ssl-certfile",
        envvar="HEADRACE_KAFKA_SSL_CERTFILE",
        type=_FILE,
        default=None,
        help="Client certificate (PEM), for brokers that require one.",
    ),
    flag("--kafka-ssl-keyfile", envvar="HEADRACE_KAFKA_SSL_KEYFILE", type=_FILE, default=None),
    flag("--cassandra-username", envvar="HEADRACE_CASSANDRA_USERNAME", default=None),
    flag(
        "--cassandra-password",
        envvar="HEADRACE_CASSANDRA_PASSWORD",
        default=None,
        help="Prefer the environment variable.",
    ),
    flag(
        "--cassandra-ssl-cafile",
        envvar="HEADRACE_CASSANDRA_SSL_CAFILE",
        type=_FILE,
        default=None,
        help="CA (PEM) to verify the nodes with; set it to connect over TLS.",
    ),
    flag(
        "--cassandra-consistency",
        envvar="HEADRACE_CASSANDRA_CONSISTENCY",
        default=_CLUSTER.cassandra_consistency.level,
        callback=_checked(check_level),
        help="Of every read and write: LOCAL_QUORUM, QUORUM (services in several data centres) "
        "or ALL; weaker levels are refused.",
    ),
    flag(
        "--cassandra-serial-consistency",
        envvar="HEADRACE_CASSANDRA_SERIAL_CONSISTENCY",
        default=_CLUSTER.cassandra_consistency.serial,
        callback=_checked(check_serial),
        help="Of lightweight transactions: LOCAL_SERIAL or SERIAL.",
    ),
]
