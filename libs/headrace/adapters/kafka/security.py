"""How a Kafka client authenticates and encrypts: SASL (PLAIN, SCRAM) and TLS, as aiokafka takes
them, and the refusal of credentials as headrace's own permanent error."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from headrace.core.errors import AuthenticationFailed

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    # Kept out of repr so that a logged or traced settings object never shows it.
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"Kafka security protocol must be one of {PROTOCOLS}")
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ValueError(f"Kafka SASL mechanism must be one of {SASL_MECHANISMS}")
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"Kafka security protocol {self.protocol} needs a username and password"
            )
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError("a Kafka client certificate needs both its cert file and key file")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        if self.uses_tls:
            # Without a CA file the system's trust store verifies the brokers.
            options["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        return options


class KafkaAuthenticationFailed(AuthenticationFailed):
    """A broker refused the credentials or the TLS handshake failed: trying again with the same
    configuration cannot help."""


DIAGNOSE_TIMEOUT_MS = 5_000
_REFUSALS = (SaslAuthenticationFailed, AuthenticationFailedError, UnsupportedSaslMechanismError)


async def raise_refusal(bootstrap: str, security: KafkaSecurity) -> None:
    """Raise `KafkaAuthenticationFailed` naming the broker and its reason if one of the
    bootstrap brokers refuses this client's login or TLS; return if none does.

    aiokafka reports a refused login only as "Unable to bootstrap" (the reason goes to its
    log), so after such a failure one direct connection per broker finds the reason.
    """
    options = security.client_options()
    for host, port, _ in collect_hosts(bootstrap, randomize=False):
        try:
            conn = await create_conn(host, port, request_timeout_ms=DIAGNOSE_TIMEOUT_MS, **options)
        except _REFUSALS as err:
            who = f"{security.sasl_mechanism} as {security.sasl_username!r}"
            raise KafkaAuthenticationFailed(
                f"kafka broker {host}:{port}: authentication failed ({who}): {err}"
            ) from err
        except ssl.SSLError as err:
            raise KafkaAuthenticationFailed(
                f"kafka broker {host}:{port}: TLS handshake failed: {err}"
            ) from err
        except (OSError, KafkaError, TimeoutError) as err:
            alert = _alert(err)
            if alert is None:
                continue  # unreachable: an outage, which the caller's error already says
            sent = "" if security.ssl_certfile else " (this client sent no certificate)"
            raise KafkaAuthenticationFailed(
                f"kafka broker {host}:{port}: TLS handshake refused{sent}: {alert}"
            ) from err
        else:
            conn.close()


def _alert(error: BaseException) -> ssl.SSLError | None:
    """The TLS alert a broker refused the handshake with, behind aiokafka's "Connection closed".

    Under TLS 1.3 the client's side of the handshake is done before the broker checks the
    client's certificate, so a refusal (e.g. a missing certificate where one is required)
    arrives as an alert on the first read. Only an alert counts: a connection cut mid-handshake
    is an outage.
    """
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError) and "ALERT" in (cause.reason or ""):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


async def start_client(client: Any, bootstrap: str, security: KafkaSecurity) -> None:
    """`client.start()` (a producer, consumer or admin client), with a refused login or TLS
    handshake raised as `KafkaAuthenticationFailed` instead of "Unable to bootstrap"."""
    try:
        await client.start()
    except KafkaConnectionError:
        await raise_refusal(bootstrap, security)
        raise


PLAINTEXT = KafkaSecurity()
