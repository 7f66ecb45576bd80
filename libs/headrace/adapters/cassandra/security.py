"""How the Cassandra driver authenticates (PasswordAuthenticator) and encrypts (TLS), and the
refusal of credentials as headrace's own permanent error."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from cassandra import AuthenticationFailed as DriverAuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import NoHostAvailable

from headrace.core.errors import AuthenticationFailed


@dataclass(frozen=True)
class CassandraSecurity:
    username: str | None = None
    # Kept out of repr so that a logged or traced settings object never shows it.
    password: str | None = field(default=None, repr=False)
    # TLS to the nodes, verified against this CA (and each node's address) when set.
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        if bool(self.username) != bool(self.password):
            raise ValueError("Cassandra authentication needs both a username and a password")

    def cluster_options(self) -> dict[str, Any]:
        """Keyword arguments for the driver's `Cluster`."""
        options: dict[str, Any] = {}
        if self.username:
            options["auth_provider"] = PlainTextAuthProvider(self.username, self.password)
        if self.ssl_cafile:
            options["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        return options


class CassandraAuthenticationFailed(AuthenticationFailed):
    """The nodes refused the credentials or the TLS handshake: trying again with the same
    configuration cannot help."""


def _refusal(error: BaseException) -> bool:
    return isinstance(error, DriverAuthenticationFailed | ssl.SSLError)


def translated(error: BaseException) -> BaseException:
    """A connection that every node refused (credentials or TLS) as
    `CassandraAuthenticationFailed` naming the nodes and their reasons; anything else as is."""
    if not isinstance(error, NoHostAvailable) or not error.errors:
        return error
    if not all(_refusal(reason) for reason in error.errors.values()):
        return error
    reasons = "; ".join(f"node {node}: {reason}" for node, reason in error.errors.items())
    refused = CassandraAuthenticationFailed(f"cassandra authentication failed: {reasons}")
    refused.__cause__ = error
    return refused
