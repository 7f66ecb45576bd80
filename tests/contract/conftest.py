"""Fixtures the contract suites share: the stores on every adapter, and for Cassandra one
session and one migrated keyspace per test module, emptied (not recreated) between tests,
because creating a keyspace's tables costs about 2 s on this machine."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cassandra.cluster import Session
from keyspaces import SINGLE_NODE, empty_keyspace

from headrace.adapters.cassandra import CassandraStores
from headrace.adapters.cassandra.schema import migrate
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.infra.cassandra import drop_keyspace, local_cluster
from headrace.ports.stores import Stores


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
        drop_keyspace(cassandra_session, keyspace)


@pytest.fixture(
    params=["sqlite-memory", "sqlite-file", pytest.param("cassandra", marks=pytest.mark.cassandra)]
)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "cassandra":
        # Asked for here, not in the signature, so the SQLite variants never need Cassandra.
        session: Session = request.getfixturevalue("cassandra_session")
        keyspace: str = request.getfixturevalue("store_keyspace")
        await asyncio.to_thread(empty_keyspace, session, keyspace)
        yield await asyncio.to_thread(CassandraStores, session, keyspace)
        return
    db = Database(":memory:" if request.param == "sqlite-memory" else str(tmp_path / "s.db"))
    yield SqliteStores(db)
    db.close()
