"""Opening the driver's cluster, session and the stores, with the driver's errors translated at
this edge: a refused login or TLS handshake as `CassandraAuthenticationFailed` (permanent), a
node that does not answer as `CassandraUnavailable` (retried)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)

from headrace.adapters.cassandra.consistency import DEFAULT_CONSISTENCY, CassandraConsistency
from headrace.adapters.cassandra.security import CassandraSecurity
from headrace.adapters.cassandra.security import translated as refusal_translated
from headrace.adapters.cassandra.session import translate as outage_translated
from headrace.adapters.cassandra.stores import CassandraStores
from headrace.core.retention import DEFAULT_RETENTION_S

T = TypeVar("T")

# The driver's cluster (connections to every node), as callers above the adapter name it.
CassandraCluster: TypeAlias = Cluster

# After an outage a service is ready again, and its records go on, once the driver reconnects.
# The driver's default schedule doubles up to 600 s and gives up after 64 attempts (some nine
# hours): a node back after five minutes away was used three and a half minutes later. Doubling
# from 1 s up to 10 s, for as long as it takes: one connection attempt per node every 10 s while
# it is down.
RECONNECT_BASE_S = 1.0
RECONNECT_MAX_S = 10.0

# The driver writes a request over 4 KB in 4 KB pieces, one send() each, and does not turn off
# Nagle's algorithm: the second piece then waits for the first one's delayed ACK (about 40 ms on
# Linux). A run's write passes 4 KB at about 60 steps, after which every step took 50-57 ms
# more in distributed mode (benchmarks/long_runs.md).
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

# `migrate` reads no schema metadata and waits for agreement itself, once per migration
# (schema.py); by default the driver reads every keyspace's schema at connect, and after each
# statement waits for agreement and reads the changed table's schema again.
_MIGRATION_OPTIONS: dict[str, Any] = {
    "schema_metadata_enabled": False,
    "max_schema_agreement_wait": 0,
}


def cassandra_cluster(
    hosts: Sequence[str],
    port: int,
    *,
    consistency: CassandraConsistency = DEFAULT_CONSISTENCY,
    security: CassandraSecurity | None = None,
    for_migrations: bool = False,
) -> CassandraCluster:
    """`for_migrations`: a cluster for `migrate` alone (no schema metadata, no waits for
    agreement but migrate's own); the stores need the metadata for token-aware routing."""
    # The configured levels are the default profile's, so that `migrate`'s reads of its ledger
    # see what an earlier run applied, as the stores' reads do.
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        **consistency.driver_options(),
    )
    return Cluster(
        list(hosts),
        port=port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        reconnection_policy=ExponentialReconnectionPolicy(
            RECONNECT_BASE_S, RECONNECT_MAX_S, max_attempts=None
        ),
        sockopts=_SOCKET_OPTIONS,
        **(security or CassandraSecurity()).cluster_options(),
        **(_MIGRATION_OPTIONS if for_migrations else {}),
    )


def _translating(call: Callable[[], T]) -> T:
    try:
        return call()
    except Exception as err:
        translated = refusal_translated(err)
        if translated is err:
            translated = outage_translated(err)
        if translated is err:
            raise
        raise translated from err


def cassandra_session(cluster: CassandraCluster) -> Session:
    """`cluster.connect()` (blocking), with the driver's errors translated."""
    return _translating(cluster.connect)


def open_stores(
    session: Session,
    keyspace: str,
    *,
    retention_s: int = DEFAULT_RETENTION_S,
    consistency: CassandraConsistency = DEFAULT_CONSISTENCY,
) -> CassandraStores:
    """The stores (blocking: every statement is prepared), with the driver's errors translated."""
    return _translating(
        lambda: CassandraStores(session, keyspace, retention_s=retention_s, consistency=consistency)
    )
