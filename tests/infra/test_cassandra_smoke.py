"""Smoke tests on the real Cassandra node: the features the engine's stores rely on.

Each test runs in its own keyspace (`cassandra_keyspace`), dropped afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from cassandra.cluster import Cluster, Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

from headrace.infra.cassandra import local_cluster

pytestmark = pytest.mark.cassandra


@pytest.fixture(scope="module")
def cluster(cassandra_contact: tuple[str, int]) -> Iterator[Cluster]:
    host, port = cassandra_contact
    cluster = local_cluster(host, port)
    yield cluster
    cluster.shutdown()


@pytest.fixture
def session(cluster: Cluster, cassandra_keyspace: str) -> Iterator[Session]:
    session = cluster.connect(cassandra_keyspace)
    yield session
    session.shutdown()


def test_prepared_statements_bind_values_and_round_trip(session: Session) -> None:
    session.execute(
        "CREATE TABLE memos (run_id uuid, step text, value blob, PRIMARY KEY (run_id, step))"
    )
    insert = session.prepare("INSERT INTO memos (run_id, step, value) VALUES (?, ?, ?)")
    select = session.prepare("SELECT step, value FROM memos WHERE run_id = ?")
    assert [column.name for column in insert.column_metadata] == ["run_id", "step", "value"]

    run, other = uuid.uuid4(), uuid.uuid4()
    for i in (2, 0, 1):
        session.execute(insert, (run, f"step-{i}", bytes([i])))
    session.execute(insert, (other, "step-0", b"other run"))

    rows = list(session.execute(select, (run,)))
    assert [(row.step, row.value) for row in rows] == [
        ("step-0", b"\x00"),
        ("step-1", b"\x01"),
        ("step-2", b"\x02"),
    ]  # one partition per run, clustered by step


def test_lightweight_transaction_if_not_exists_applies_once(session: Session) -> None:
    session.execute("CREATE TABLE idempotency (key text PRIMARY KEY, run_id uuid)")
    claim = session.prepare("INSERT INTO idempotency (key, run_id) VALUES (?, ?) IF NOT EXISTS")
    winner, loser = uuid.uuid4(), uuid.uuid4()

    first = session.execute(claim, ("order-42", winner))
    assert first.was_applied
    second = session.execute(claim, ("order-42", loser))
    assert not second.was_applied
    row = second.one()
    assert row[0] is False  # the `[applied]` column
    assert row.run_id == winner  # a failed LWT returns the row that won
    stored = session.execute("SELECT run_id FROM idempotency WHERE key = 'order-42'").one()
    assert stored.run_id == winner


def test_ttl_expires_the_row(session: Session) -> None:
    session.execute("CREATE TABLE dedupe (key text PRIMARY KEY, seen int)")
    # TTL 2, not 1: expiry is in whole seconds, so a 1 s TTL can lapse before the first read.
    session.execute("INSERT INTO dedupe (key, seen) VALUES ('event-1', 1) USING TTL 2")
    select = "SELECT seen, TTL(seen) AS ttl FROM dedupe WHERE key = 'event-1'"

    row = session.execute(select).one()
    assert row is not None and 0 < row.ttl <= 2
    written = time.monotonic()
    while session.execute(select).one() is not None:
        assert time.monotonic() - written < 5, "the row outlived its TTL"
        time.sleep(0.1)


def test_paging_with_fetch_size_and_resume_from_paging_state(session: Session) -> None:
    session.execute(
        "CREATE TABLE history (run_id uuid, seq int, note text, PRIMARY KEY (run_id, seq))"
    )
    insert = session.prepare("INSERT INTO history (run_id, seq, note) VALUES (?, ?, ?)")
    run = uuid.uuid4()
    results = execute_concurrent_with_args(
        session, insert, [(run, i, f"attempt {i}") for i in range(250)], concurrency=50
    )
    assert all(result.success for result in results)

    query = SimpleStatement("SELECT seq FROM history WHERE run_id = %s", fetch_size=100)
    page = session.execute(query, (run,))
    assert [row.seq for row in page.current_rows] == list(range(100))
    assert page.has_more_pages

    resumed = session.execute(query, (run,), paging_state=page.paging_state)
    assert [row.seq for row in resumed.current_rows] == list(range(100, 200))

    pages = 1
    while page.has_more_pages:
        page.fetch_next_page()
        pages += 1
    assert pages == 3
    assert [row.seq for row in session.execute(query, (run,))] == list(range(250))
