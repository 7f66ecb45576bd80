"""The secured test profile: a second Kafka and a second Cassandra that demand credentials and
TLS, on their own ports and state directories, sharing the plain ones' jars.

Kafka listens four ways: SASL_SSL (the production shape), SASL_PLAINTEXT, SSL that requires a
client certificate, and a plaintext listener for its own inter-broker traffic and the readiness
probe. Its users (PLAIN and SCRAM-SHA-256/512, one name and password) exist from storage format
on. Cassandra runs
PasswordAuthenticator with its default superuser and accepts TLS clients only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headrace.adapters.cassandra.security import CassandraSecurity
from headrace.adapters.kafka.security import KafkaSecurity
from headrace.infra.cassandra import Cassandra
from headrace.infra.config import InfraConfig
from headrace.infra.kafka import Kafka
from headrace.infra.tls import TlsFiles, server_tls

KAFKA_USER = "headrace"
KAFKA_PASSWORD = "headrace-test-secret"
# Cassandra's default superuser, created at first start by PasswordAuthenticator.
CASSANDRA_USER = "cassandra"
CASSANDRA_PASSWORD = "cassandra"
# Offsets from the plain ports, so a machine that moved those moves these too.
PORT_OFFSET = 100


def tls_files(config: InfraConfig) -> TlsFiles:
    """The CA clients verify both secured servers with, and the servers' certificate."""
    return server_tls(config.state_dir / "secured-tls", config.host)


class SecuredKafka(Kafka):
    name = "kafka-secured"

    def __init__(self, config: InfraConfig) -> None:
        super().__init__(config)
        base = config.kafka_port + PORT_OFFSET
        self.port = base  # the plaintext listener: inter-broker traffic and the probe
        self.sasl_ssl_port = base + 2
        self.sasl_plaintext_port = base + 3
        self.ssl_port = base + 4
        self.controller_port = config.kafka_controller_port + PORT_OFFSET

    @property
    def ports(self) -> tuple[int, ...]:
        return (
            self.port,
            self.controller_port,
            self.sasl_ssl_port,
            self.sasl_plaintext_port,
            self.ssl_port,
        )

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"{self.host}:{self.sasl_ssl_port}"

    @property
    def sasl_plaintext_bootstrap(self) -> str:
        return f"{self.host}:{self.sasl_plaintext_port}"

    def server_properties(self) -> str:
        host, tls = self.host, tls_files(self.config)
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule required "
        plain += f'user_{KAFKA_USER}="{KAFKA_PASSWORD}";'
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        listeners = (
            f"PLAINTEXT://{host}:{self.port},SASL_SSL://{host}:{self.sasl_ssl_port},"
            f"SASL_PLAINTEXT://{host}:{self.sasl_plaintext_port},SSL://{host}:{self.ssl_port}"
        )
        per_listener = "".join(
            f"listener.name.{name}.plain.sasl.jaas.config={plain}\n"
            f"listener.name.{name}.scram-sha-256.sasl.jaas.config={scram}\n"
            f"listener.name.{name}.scram-sha-512.sasl.jaas.config={scram}\n"
            for name in ("sasl_ssl", "sasl_plaintext")
        )
        base = super().server_properties()
        base = base.replace(
            f"listeners=PLAINTEXT://{host}:{self.port},CONTROLLER://{host}:{self.controller_port}",
            f"listeners={listeners},CONTROLLER://{host}:{self.controller_port}",
        ).replace(
            f"advertised.listeners=PLAINTEXT://{host}:{self.port}",
            f"advertised.listeners={listeners}",
        )
        base = base.replace(
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL",
        )
        return (
            base
            + "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n"
            + per_listener
            + "ssl.keystore.type=PEM\n"
            + f"ssl.keystore.location={tls.keystore}\n"
            + "ssl.truststore.type=PEM\n"
            + f"ssl.truststore.location={tls.ca}\n"
            + "listener.name.ssl.ssl.client.auth=required\n"
        )

    def format_args(self) -> list[str]:
        return [
            f"--add-scram={mechanism}=[name={KAFKA_USER},password={KAFKA_PASSWORD}]"
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        ]


class SecuredCassandra(Cassandra):
    name = "cassandra-secured"

    def __init__(self, config: InfraConfig) -> None:
        super().__init__(config)
        self.port = config.cassandra_port + PORT_OFFSET
        self.storage_port = config.cassandra_storage_port + PORT_OFFSET

    def cassandra_yaml(self) -> str:
        keystore = tls_files(self.config).keystore
        return (
            super()
            .cassandra_yaml()
            .replace("authenticator: AllowAllAuthenticator", "authenticator: PasswordAuthenticator")
            + f"""\
client_encryption_options:
  enabled: true
  optional: false
  require_client_auth: false
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: {keystore}
"""
        )

    def client_options(self) -> dict[str, Any]:
        security = CassandraSecurity(
            CASSANDRA_USER, CASSANDRA_PASSWORD, str(tls_files(self.config).ca)
        )
        return security.cluster_options()


@dataclass(frozen=True)
class SecuredEndpoints:
    """Where and how clients reach the secured profile."""

    kafka_sasl_ssl: str
    kafka_sasl_plaintext: str
    kafka_ssl: str  # requires a client certificate
    cassandra_contact: tuple[str, int]
    ca_file: str
    client_cert: str
    client_key: str

    def kafka_security(
        self, mechanism: str = "SCRAM-SHA-512", password: str = KAFKA_PASSWORD, *, tls: bool = True
    ) -> KafkaSecurity:
        return KafkaSecurity(
            protocol="SASL_SSL" if tls else "SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_username=KAFKA_USER,
            sasl_password=password,
            ssl_cafile=self.ca_file if tls else None,
        )

    def kafka_client_certificate(self) -> KafkaSecurity:
        """TLS with the client certificate, for the listener that requires one."""
        return KafkaSecurity(
            protocol="SSL",
            ssl_cafile=self.ca_file,
            ssl_certfile=self.client_cert,
            ssl_keyfile=self.client_key,
        )

    def cassandra_security(self, password: str = CASSANDRA_PASSWORD) -> CassandraSecurity:
        return CassandraSecurity(CASSANDRA_USER, password, self.ca_file)


def secured_endpoints(config: InfraConfig) -> SecuredEndpoints:
    kafka, cassandra = SecuredKafka(config), SecuredCassandra(config)
    return SecuredEndpoints(
        kafka_sasl_ssl=kafka.sasl_ssl_bootstrap,
        kafka_sasl_plaintext=kafka.sasl_plaintext_bootstrap,
        kafka_ssl=f"{kafka.host}:{kafka.ssl_port}",
        cassandra_contact=(cassandra.host, cassandra.port),
        ca_file=str(tls_files(config).ca),
        client_cert=str(tls_files(config).client_cert),
        client_key=str(tls_files(config).client_key),
    )
