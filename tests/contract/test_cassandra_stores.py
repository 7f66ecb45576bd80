"""What only the Cassandra stores do: TTLs, lightweight transactions under contention, the timer
slots, bucketed event listings, paging, the schema's migrations and retryable errors.

Like the contract suite, the tests share one migrated keyspace per module and empty it first.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from cassandra import ConsistencyLevel, InvalidRequest, OperationTimedOut, Unavailable
from cassandra.cluster import ResponseFuture, Session
from keyspaces import SINGLE_NODE, empty_keyspace

from headrace.adapters.cassandra import CassandraStores, CassandraUnavailable, migrate
from headrace.adapters.cassandra.apps import AppTables
from headrace.adapters.cassandra.connect import cassandra_cluster
from headrace.adapters.cassandra.consistency import CassandraConsistency
from headrace.adapters.cassandra.events import BUCKET_MS, BUCKET_REWRITE_S, EventTables
from headrace.adapters.cassandra.keys import KeyTables
from headrace.adapters.cassandra.pauses import BatchTables, PauseTables
from headrace.adapters.cassandra.runs import MAX_OPEN_S, RunTables
from headrace.adapters.cassandra.session import Cql, translate
from headrace.adapters.cassandra.timers import SLOT_MS, TimerTables
from headrace.core.errors import Conflict
from headrace.messages.model import Event
from headrace.messages.state import HistoryEntry, RunState, Timer

RETENTION_S = 3600


@pytest.fixture
async def ks(cassandra_session: Session, store_keyspace: str) -> str:
    await asyncio.to_thread(empty_keyspace, cassandra_session, store_keyspace)
    return store_keyspace


@pytest.fixture
async def stores(cassandra_session: Session, ks: str) -> AsyncIterator[CassandraStores]:
    yield await asyncio.to_thread(CassandraStores, cassandra_session, ks, retention_s=RETENTION_S)


def _one(session: Session, cql: str, *params: Any) -> Any:
    row = session.execute(cql, params).one()
    return None if row is None else row[0]


def _run(run_id: str = "r1", **kw: Any) -> RunState:
    return RunState(run_id=run_id, account_id="acct", fn_id="fn", app_id="app", **kw)


def _near(ttl: int | None, expected: int) -> bool:
    return ttl is not None and expected - 30 <= ttl <= expected


# --- retention ---


async def test_an_open_run_keeps_its_rows_and_an_ended_one_gets_the_retention_ttl(
    stores: CassandraStores, cassandra_session: Session, ks: str
) -> None:
    s, open_ttl = cassandra_session, RETENTION_S + MAX_OPEN_S
    run = _run()
    await stores.create_run(run)
    await stores.append_history(HistoryEntry(entry_id="01", run_id="r1", ts_ms=1, kind="x"))
    run.stack = ["h1"]
    await stores.save_run(run, {"h1": b"1"})
    assert _near(_one(s, f"SELECT TTL(body) FROM {ks}.runs WHERE run_id = 'r1' LIMIT 1"), open_ttl)
    assert _near(_one(s, f"SELECT TTL(memo) FROM {ks}.runs WHERE run_id = 'r1'"), open_ttl)
    assert _near(_one(s, f"SELECT TTL(body) FROM {ks}.history WHERE run_id = 'r1'"), open_ttl)

    run.status, run.stack = "completed", ["h1", "h2"]
    await stores.save_run(run, {"h2": b"2"})
    await stores.retain_run(run)
    ttls = s.execute(f"SELECT hash, TTL(memo), TTL(body) FROM {ks}.runs WHERE run_id = 'r1'")
    assert {row[0] for row in ttls} == {"h1", "h2"}
    assert all(_near(row[1], RETENTION_S) and _near(row[2], RETENTION_S) for row in ttls)
    assert _near(_one(s, f"SELECT TTL(body) FROM {ks}.history WHERE run_id = 'r1'"), RETENTION_S)
    # The memos survive the rewrite unchanged, and the listing still finds the run.
    assert await stores.get_memos("r1") == {"h1": b"1", "h2": b"2"}
    assert [r.status for r in await stores.list_runs("acct")] == ["completed"]


async def test_a_large_ended_run_is_rewritten_in_pieces(
    stores: CassandraStores, cassandra_session: Session, ks: str
) -> None:
    run = _run()
    await stores.create_run(run)
    memos = {f"h{i}": bytes([i]) * 700_000 for i in range(4)}  # 2.8 MB, past one piece
    for step_hash, value in memos.items():
        await stores.save_run(run, {step_hash: value})
    run.status = "failed"
    await stores.save_run(run)
    await stores.retain_run(run)
    assert await stores.get_memos("r1") == memos
    ttls = cassandra_session.execute(f"SELECT TTL(memo) FROM {ks}.runs WHERE run_id = 'r1'")
    assert all(_near(row[0], RETENTION_S) for row in ttls)


async def test_a_save_writes_no_memo_row_of_an_earlier_save_again(
    stores: CassandraStores, cassandra_session: Session, ks: str
) -> None:
    """Only the memos a save is given are written: the cells of earlier ones keep their write
    time (a rewrite of every memo on every save would grow each step's cost with the run)."""
    run = _run(stack=["h0"])
    await stores.create_run(run, {"h0": b"0"})
    written = f"SELECT hash, WRITETIME(memo) FROM {ks}.runs WHERE run_id = 'r1'"
    first = dict(cassandra_session.execute(written))
    run.stack.append("h1")
    await stores.save_run(run, {"h1": b"1"})
    await stores.save_run(run)
    second = dict(cassandra_session.execute(written))
    assert second.keys() == {"h0", "h1"} and second["h0"] == first["h0"]
    assert await stores.get_memos("r1") == {"h0": b"0", "h1": b"1"}


async def test_a_run_written_before_versions_existed_is_at_version_0(
    stores: CassandraStores, cassandra_session: Session, ks: str
) -> None:
    """Runs in flight across the upgrade that added versions go on: their first write expects
    no version, and a second writer of the same state loses."""
    # The run as the older release wrote it: a body, and no version column.
    body = msgspec.msgpack.encode(_run(stack=["a"]))
    cassandra_session.execute(f"INSERT INTO {ks}.runs (run_id, body) VALUES ('r1', %s)", (body,))
    first, second = await stores.get_run("r1"), await stores.get_run("r1")
    assert first is not None and second is not None and first.version == 0
    assert await stores.get_run_and_memo_keys("r1") == (first, set())
    await stores.save_run(first, {"b": b"1"})
    assert first.version == 1
    with pytest.raises(Conflict):
        await stores.save_run(second, {"c": b"1"})
    assert await stores.get_memos("r1") == {"b": b"1"}


async def test_events_and_their_links_get_the_retention_ttl(
    stores: CassandraStores, cassandra_session: Session, ks: str
) -> None:
    event = Event(internal_id="e1", account_id="acct", name="a", payload={}, received_ms=0)
    await stores.put_event(event)
    await stores.link_run("e1", "r1")
    s = cassandra_session
    assert _near(
        _one(s, f"SELECT TTL(body) FROM {ks}.events WHERE internal_id = 'e1'"), RETENTION_S
    )
    feed = (
        f"SELECT TTL(body) FROM {ks}.event_feed "
        "WHERE account_id = 'acct' AND feed = %s AND bucket = 0"
    )
    assert _near(_one(s, feed, ""), RETENTION_S)
    assert _near(_one(s, feed, "name:a"), RETENTION_S)
    assert await stores.runs_for_event("e1") == ["r1"]


async def test_a_key_vanishes_by_ttl_and_can_be_claimed_again(
    stores: CassandraStores, cassandra_session: Session, ks: str
) -> None:
    assert await stores.claim("k", "first", ttl_ms=1, now_ms=0) is None
    query = f"SELECT TTL(value) FROM {ks}.claims WHERE claim_key = 'k'"
    ttl = _one(cassandra_session, query)
    assert ttl is not None and ttl <= 2
    deadline = time.monotonic() + 5
    while _one(cassandra_session, query) is not None:
        assert time.monotonic() < deadline, "the key outlived its TTL"
        await asyncio.sleep(0.2)
    # Gone by TTL: claimable again even by a caller whose clock says it is still valid.
    assert await stores.claim("k", "second", ttl_ms=60_000, now_ms=0) is None
    assert await stores.claim("k", "third", ttl_ms=60_000, now_ms=1) == "second"


# --- timers ---


def _timer(timer_id: str, fire_ms: int, partition: int = 0) -> Timer:
    return Timer(timer_id=timer_id, partition=partition, fire_ms=fire_ms, record=timer_id.encode())


async def test_timers_are_read_slot_by_slot_and_emptied_slots_are_dropped(
    stores: CassandraStores, cassandra_session: Session, ks: str
) -> None:
    stores._timer_drop_margin_us = 0  # drop at once, not only index rows a minute old
    for timer in (
        _timer("late", 3 * SLOT_MS + 5),
        _timer("b", SLOT_MS + 1),
        _timer("a", 30),
        _timer("other", 10, partition=1),
    ):
        await stores.put_timer(timer)

    def slots(partition: int = 0) -> list[int]:
        query = f"SELECT slot FROM {ks}.timer_slots WHERE partition = %s"
        return [row[0] for row in cassandra_session.execute(query, (partition,))]

    assert slots() == [0, 1, 3]
    due = await stores.timers_due(0, 2 * SLOT_MS)
    assert [(t.timer_id, t.fire_ms, t.record) for t in due] == [("a", 30, b"a"), ("b", 60001, b"b")]
    await stores.delete_timer(0, "a")
    await stores.delete_timer(0, "b")
    assert [t.timer_id for t in await stores.timers_due(0, 2 * SLOT_MS)] == []
    assert slots() == [3]  # slots 0 and 1 dropped, the other partition's kept
    assert slots(1) == [0]
    assert [t.timer_id for t in await stores.timers_due(1, 0)] == []
    assert [t.timer_id for t in await stores.timers_due(1, 10)] == ["other"]

    # A timer added to a dropped slot later (overdue) is found: the drop shadows only older rows.
    await stores.put_timer(_timer("overdue", 20))
    due = await stores.timers_due(0, 4 * SLOT_MS)
    assert [t.timer_id for t in due] == ["overdue", "late"]


async def test_a_timer_keeps_its_first_fire_time_even_after_a_half_done_put(
    stores: CassandraStores, cassandra_session: Session, ks: str
) -> None:
    await stores.put_timer(_timer("t", 30))
    await stores.put_timer(_timer("t", 5 * SLOT_MS))
    assert [t.fire_ms for t in await stores.timers_due(0, 10 * SLOT_MS)] == [30]
    # A put interrupted after its first write (the id): repeating it completes the first one.
    cassandra_session.execute(
        f"INSERT INTO {ks}.timer_ids (partition, timer_id, fire_ms, record) "
        "VALUES (0, 'half', 40, 0x01)"
    )
    await stores.put_timer(_timer("half", 9 * SLOT_MS))
    due = await stores.timers_due(0, 10 * SLOT_MS)
    assert [(t.timer_id, t.fire_ms, t.record) for t in due] == [
        ("t", 30, b"t"),
        ("half", 40, b"\x01"),
    ]
    await stores.delete_timer(0, "t")
    await stores.delete_timer(0, "half")
    await stores.delete_timer(0, "never-added")
    assert await stores.timers_due(0, 10 * SLOT_MS) == []


# --- events, listings, paging ---


async def test_events_are_listed_newest_first_across_hour_buckets(stores: CassandraStores) -> None:
    for receipt, hour, name in (("01", 0, "a"), ("02", 0, "b"), ("03", 1, "a"), ("04", 5, "b")):
        await stores.put_event(
            Event(
                internal_id=f"e{receipt}",
                receipt_id=receipt,
                account_id="acct",
                name=name,
                payload={},
                received_ms=hour * BUCKET_MS + 7,
            )
        )
    listed = [e.receipt_id for e in await stores.list_events("acct")]
    assert listed == ["04", "03", "02", "01"]
    assert [e.receipt_id for e in await stores.list_events("acct", limit=3)] == ["04", "03", "02"]
    assert [e.receipt_id for e in await stores.list_events("acct", name="a")] == ["03", "01"]
    assert await stores.list_events("acct", limit=0) == []


async def test_an_hour_s_bucket_index_row_is_written_again_only_every_ten_minutes(
    cassandra_session: Session, ks: str
) -> None:
    now = [0.0]
    stores = await asyncio.to_thread(
        CassandraStores, cassandra_session, ks, retention_s=RETENTION_S, monotonic=lambda: now[0]
    )

    async def put(receipt: str) -> None:
        await stores.put_event(
            Event(
                internal_id=f"e{receipt}",
                receipt_id=receipt,
                account_id="acct",
                name="a",
                payload={},
                received_ms=7,
            )
        )

    async def listed() -> list[str]:
        return [e.receipt_id for e in await stores.list_events("acct")]

    await put("01")
    assert await listed() == ["01"]
    # As if the index rows had expired: only a write of them lists the bucket again.
    for feed in ("", "name:a", "external"):
        await asyncio.to_thread(
            cassandra_session.execute,
            f"DELETE FROM {ks}.event_buckets WHERE account_id = 'acct' AND feed = %s",
            (feed,),
        )
    now[0] = BUCKET_REWRITE_S - 1
    await put("02")
    assert await listed() == []  # not written for each event of the hour
    now[0] = BUCKET_REWRITE_S + 1
    await put("03")
    assert await listed() == ["03", "02", "01"]


async def test_long_results_are_read_page_by_page(
    stores: CassandraStores, cassandra_session: Session
) -> None:
    entries = [HistoryEntry(entry_id=f"{i:03}", run_id="r1", ts_ms=i, kind="x") for i in range(25)]
    await asyncio.gather(*(stores.append_history(e) for e in entries))
    saved = cassandra_session.default_fetch_size
    cassandra_session.default_fetch_size = 10
    try:
        assert await stores.list_history("r1") == entries
    finally:
        cassandra_session.default_fetch_size = saved


async def test_a_cancelled_query_leaves_nothing_behind(stores: CassandraStores) -> None:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: problems.append(context))
    try:
        task = asyncio.ensure_future(stores.list_history("r1"))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0.3)
        assert await stores.list_history("r1") == []
    finally:
        loop.set_exception_handler(None)
    assert problems == []


# --- schema and wiring ---


async def test_migrate_applies_each_migration_once(
    cassandra_session: Session, cassandra_keyspace: str
) -> None:
    s, ks = cassandra_session, cassandra_keyspace
    assert await asyncio.to_thread(migrate, s, ks, SINGLE_NODE) == [1, 2, 3]
    assert await asyncio.to_thread(migrate, s, ks, SINGLE_NODE) == []
    # Interrupted before it was recorded: applied again, harmlessly.
    s.execute(f"DELETE FROM {ks}.schema_migrations WHERE version IN (1, 3)")
    assert await asyncio.to_thread(migrate, s, ks, SINGLE_NODE) == [1, 3]
    stores = await asyncio.to_thread(CassandraStores, s, ks)
    assert await stores.create_run(_run())


async def test_two_migrates_at_once_over_their_own_clusters_leave_the_schema_whole(
    cassandra_contact: tuple[str, int], drop_keyspace: Callable[[str], None]
) -> None:
    """As two `headrace migrate` commands started together: each with a cluster built as the
    command builds it (no waits for agreement but migrate's own), on a keyspace neither
    finds."""
    ks = "twice_" + uuid.uuid4().hex[:16]
    clusters = [
        cassandra_cluster([cassandra_contact[0]], cassandra_contact[1], for_migrations=True)
        for _ in range(2)
    ]
    try:
        sessions = [cluster.connect() for cluster in clusters]
        applied = await asyncio.gather(
            *(asyncio.to_thread(migrate, session, ks, SINGLE_NODE) for session in sessions)
        )
        assert set(applied[0]) | set(applied[1]) == {1, 2, 3}
        assert await asyncio.to_thread(migrate, sessions[0], ks, SINGLE_NODE) == []
        stores = await asyncio.to_thread(CassandraStores, sessions[1], ks)
        assert await stores.create_run(_run())
        assert (await stores.get_run("r1")) is not None
    finally:
        for cluster in clusters:
            cluster.shutdown()
        drop_keyspace(ks)


@pytest.mark.parametrize(
    ("level", "serial"), [("LOCAL_QUORUM", "LOCAL_SERIAL"), ("QUORUM", "SERIAL"), ("ALL", "SERIAL")]
)
async def test_every_statement_is_sent_at_the_configured_levels(
    cassandra_session: Session, ks: str, level: str, serial: str
) -> None:
    sent: list[tuple[str, str | None, str | None]] = []

    def record(future: ResponseFuture) -> None:
        message: Any = future.message
        sent.append(
            (
                type(message).__name__,
                ConsistencyLevel.value_to_name.get(message.consistency_level),
                ConsistencyLevel.value_to_name.get(message.serial_consistency_level),
            )
        )

    consistency = CassandraConsistency(level=level, serial=serial)
    stores = await asyncio.to_thread(
        CassandraStores, cassandra_session, ks, consistency=consistency
    )
    cassandra_session.add_request_init_listener(record)
    try:
        run = _run()
        assert await stores.create_run(run)  # a conditional batch
        await stores.append_history(HistoryEntry(entry_id="01", run_id="r1", ts_ms=1, kind="x"))
        assert await stores.claim("k", "v", ttl_ms=60_000, now_ms=1) is None  # a transaction
        run.status = "completed"
        await stores.save_run(run, {"h1": b"1"})
        await stores.retain_run(run)  # reads, then plain batches
        assert (await stores.get_run("r1")) == run
    finally:
        cassandra_session.remove_request_init_listener(record)

    assert {kind for kind, _, _ in sent} == {"ExecuteMessage", "BatchMessage"}
    assert {(lvl, ser) for _, lvl, ser in sent} == {(level, serial)}


def test_bad_keyspace_names_and_replication_options_are_refused() -> None:
    # Both are refused before anything is sent, so no session is needed.
    nowhere: Any = None
    with pytest.raises(ValueError):
        migrate(nowhere, "x; DROP KEYSPACE y", SINGLE_NODE)
    with pytest.raises(ValueError):
        migrate(nowhere, "fine", {"class": "Simple'Strategy"})


def test_the_table_mixins_share_no_attribute(
    cassandra_session: Session, store_keyspace: str
) -> None:
    cql = Cql(cassandra_session, store_keyspace)
    seen: dict[str, str] = {}
    for kind, args in (
        (AppTables, ()),
        (RunTables, (RETENTION_S,)),
        (EventTables, (RETENTION_S,)),
        (KeyTables, ()),
        (TimerTables, ()),
        (PauseTables, ()),
        (BatchTables, ()),
    ):
        tables = kind.__new__(kind)
        kind.__init__(tables, cql, *args)
        for name in vars(tables):
            assert name == "_cql" or name not in seen, (
                f"{kind.__name__} reuses {seen.get(name)}'s {name}"
            )
            seen[name] = kind.__name__


def test_timeouts_and_missing_replicas_are_retryable_and_other_errors_are_not() -> None:
    for error in (Unavailable("down"), OperationTimedOut("slow")):
        translated = translate(error)
        assert isinstance(translated, CassandraUnavailable) and translated.retryable
        assert translated.__cause__ is error
    invalid = InvalidRequest("no such table")
    assert translate(invalid) is invalid
