"""Credentials and TLS settings: read from the `HEADRACE_*` variables the Helm chart sets,
refused with a clear usage error when incomplete, and never shown by `repr`."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import click
import pytest
from cassandra import AuthenticationFailed, OperationTimedOut
from cassandra.cluster import NoHostAvailable
from click.testing import CliRunner

from headrace.adapters.cassandra.security import CassandraAuthenticationFailed, translated
from headrace.adapters.kafka.security import KafkaSecurity, raise_refusal
from headrace.infra.tls import server_tls
from headrace.runtime.settings import ClusterConnection, Settings
from headrace.runtime.settings_commands import service_command

KAFKA_SECRET = "kafka-secret-7d1e"
CASSANDRA_SECRET = "cassandra-secret-91aa"


@click.command()
@service_command(default_port=0)
def show(settings: Settings) -> None:
    click.echo(repr(settings))
    click.echo(sorted(settings.cluster.kafka_security.client_options()))
    click.echo(sorted(settings.cluster.cassandra_security.cluster_options()))


@pytest.fixture
def ca(tmp_path: Path) -> str:
    return str(server_tls(tmp_path, "127.0.0.1").ca)


def _secured_env(ca: str) -> dict[str, str]:
    return {
        "HEADRACE_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
        "HEADRACE_KAFKA_SASL_MECHANISM": "scram-sha-256",
        "HEADRACE_KAFKA_SASL_USERNAME": "svc",
        "HEADRACE_KAFKA_SASL_PASSWORD": KAFKA_SECRET,
        "HEADRACE_CASSANDRA_USERNAME": "svc",
        "HEADRACE_CASSANDRA_PASSWORD": CASSANDRA_SECRET,
        "HEADRACE_CASSANDRA_SSL_CAFILE": ca,
    }


def test_the_chart_variables_configure_sasl_and_tls_and_repr_hides_the_passwords(ca: str) -> None:
    result = CliRunner().invoke(show, [], env=_secured_env(ca))

    assert result.exit_code == 0, result.output
    assert "protocol='SASL_PLAINTEXT', sasl_mechanism='SCRAM-SHA-256'" in result.output
    assert "username='svc'" in result.output and f"ssl_cafile='{ca}'" in result.output
    assert (
        "['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']"
        in result.output
    )
    assert "['auth_provider', 'ssl_context']" in result.output
    assert KAFKA_SECRET not in result.output
    assert CASSANDRA_SECRET not in result.output


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"HEADRACE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "Kafka security protocol SASL_SSL needs a username and password",
        ),
        ({"HEADRACE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "'TLS' is not one of"),
        ({"HEADRACE_KAFKA_SASL_MECHANISM": "GSSAPI"}, "'GSSAPI' is not one of"),
        ({"HEADRACE_CASSANDRA_USERNAME": "svc"}, "needs both a username and a password"),
        (
            {"HEADRACE_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "'/nonexistent/ca.pem' does not exist",
        ),
    ],
)
def test_incomplete_or_unknown_security_settings_are_a_usage_error(
    env: dict[str, str], says: str
) -> None:
    result = CliRunner().invoke(show, [], env=env)

    assert result.exit_code == 2
    assert says in result.output


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    cluster = ClusterConnection()
    assert cluster.kafka_security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert cluster.cassandra_security.cluster_options() == {}


def test_every_node_refusing_the_login_is_a_permanent_error_naming_each_node() -> None:
    refused = AuthenticationFailed("Failed to authenticate to 10.0.0.1:9042: Bad credentials")
    error = NoHostAvailable("Unable to connect to any servers", {"10.0.0.1:9042": refused})

    permanent = translated(error)

    assert isinstance(permanent, CassandraAuthenticationFailed)
    assert not permanent.retryable
    assert str(permanent) == (
        "cassandra authentication failed: node 10.0.0.1:9042: "
        "Failed to authenticate to 10.0.0.1:9042: Bad credentials"
    )


def test_a_node_that_is_only_down_stays_a_retryable_outage() -> None:
    error = NoHostAvailable(
        "Unable to connect to any servers",
        {
            "10.0.0.1:9042": AuthenticationFailed("Bad credentials"),
            "10.0.0.2:9042": OperationTimedOut("timed out"),
        },
    )

    assert translated(error) is error


async def test_a_broker_that_hangs_up_without_a_tls_alert_is_an_outage_not_a_refusal(
    tmp_path: Path,
) -> None:
    tls = server_tls(tmp_path, "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()  # after the handshake, as a broker going down would

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        # Returns: the caller's "Unable to bootstrap" stands, and a service keeps retrying.
        security = KafkaSecurity(protocol="SSL", ssl_cafile=str(tls.ca))
        await raise_refusal(f"127.0.0.1:{port}", security)
    finally:
        server.close()
        await server.wait_closed()
