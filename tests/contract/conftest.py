"""Cassandra fixtures the contract suites share: one session and one migrated keyspace per
test module, emptied (not recreated) between tests, because creating a keyspace's tables costs
about 2 s on this machine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cassandra.cluster import Session
from keyspaces import SINGLE_NODE

from headrace.adapters.cassandra.schema import migrate
from headrace.infra.cassandra import local_cluster


@pytest.fixture(scope="module")
def cassandra_session(cassandra_contact: tuple[str, int]) -> Iterator[Session]:
    cluster = local_cluster(*cassandra_contact)
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def store_keyspace(cassandra_session: Session) -> Iterator[str]:
    keyspace = "stores_" + uuid.uuid4().hex[:16]
    migrate(cassandra_session, keyspace, SINGLE_NODE)
    try:
        yield keyspace
    finally:
        cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
