"""Retention on every store adapter: an ended run (its memos, history and listings), an event
(and the runs it started) and a dedupe key go once their time is up; an open run and a live key
stay. Also the dev log's dead letters, and the Kafka dead-letter topic's retention.

SQLite runs on a fake clock: just before the deadline `sweep` (what `headrace dev` runs every
minute) must delete nothing, just after it everything expired. Cassandra expires by TTL in real
seconds, so there the retention is 1 s and the test polls until the rows are gone.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from cassandra.cluster import Session
from keyspaces import empty_keyspace

from headrace.adapters.cassandra import CassandraStores
from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.kafka import KafkaLog
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import FakeClock, SystemClock
from headrace.dev.retention import Sweeper
from headrace.messages.model import Event
from headrace.messages.state import HistoryEntry, RunState
from headrace.messages.topics import Topics
from headrace.ports.log import LogRecord
from headrace.ports.stores import Stores
from headrace.runtime.dead_letter import DeadLetter, DeadLetters
from headrace.testing.dev import eventually

SQLITE_RETENTION_S = 60
# Cassandra's TTLs run on its own clock, in real time: long enough that a row written is still
# there when the test reads it back at once on a loaded machine (1 s was not: a read after two
# writes found the event gone), short enough to wait out.
CASSANDRA_RETENTION_S = 4
# Cassandra rounds a key's TTL up and adds a second (adapters/cassandra/keys.py): 2 s here.
KEY_TTL_MS = 1_000
LIVE_KEY_TTL_MS = 3_600_000

Gone = Callable[[], Awaitable[bool]]


class Aging:
    """The stores under test and how their time passes."""

    stores: Stores

    def now_ms(self) -> int:
        raise NotImplementedError

    async def past(self, deadline_s: float, gone: Gone) -> None:
        """Wait until `deadline_s` after the writes has passed, and `gone()` holds."""
        raise NotImplementedError


class SqliteAging(Aging):
    def __init__(self, db: Database) -> None:
        self.clock = FakeClock()
        self.sqlite = SqliteStores(db, clock=self.clock, retention_s=SQLITE_RETENTION_S)
        self.stores = self.sqlite

    def now_ms(self) -> int:
        return self.clock.now_ms()

    async def past(self, deadline_s: float, gone: Gone) -> None:
        await self.clock.advance(int(deadline_s * 1000) - 1)
        await self.sqlite.sweep()
        assert not await gone(), "swept before its time"
        await self.clock.advance(1)
        await self.sqlite.sweep()
        assert await gone()


class CassandraAging(Aging):
    def __init__(self, stores: CassandraStores) -> None:
        self.stores = stores

    def now_ms(self) -> int:
        return SystemClock().now_ms()

    async def past(self, deadline_s: float, gone: Gone) -> None:
        await eventually(gone, timeout=deadline_s + 15, what="the TTLs to run out")


@pytest.fixture(params=["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)])
async def aging(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Aging]:
    if request.param == "cassandra":
        session: Session = request.getfixturevalue("cassandra_session")
        keyspace: str = request.getfixturevalue("store_keyspace")
        await asyncio.to_thread(empty_keyspace, session, keyspace)
        yield CassandraAging(
            await asyncio.to_thread(
                CassandraStores, session, keyspace, retention_s=CASSANDRA_RETENTION_S
            )
        )
        return
    db = Database(str(tmp_path / "state.db"))
    yield SqliteAging(db)
    db.close()


def _retention_s(aging: Aging) -> float:
    return SQLITE_RETENTION_S if isinstance(aging, SqliteAging) else CASSANDRA_RETENTION_S


def _run(run_id: str) -> RunState:
    return RunState(run_id=run_id, account_id="acct", fn_id="fn", app_id="app")


def _entry(run_id: str, entry_id: str, kind: str) -> HistoryEntry:
    return HistoryEntry(entry_id=entry_id, run_id=run_id, ts_ms=0, kind=kind)


async def test_an_ended_run_goes_with_its_memos_history_and_listings_an_open_one_stays(
    aging: Aging,
) -> None:
    stores = aging.stores
    await stores.create_run(_run("r-open"), {"m": b'{"data":1}'})
    await stores.append_history(_entry("r-open", "01", "run.started"))
    ended = _run("r-ended")
    await stores.create_run(ended, {"h0": b'{"data":0}'})
    await stores.append_history(_entry("r-ended", "01", "run.started"))
    # The executor's last transition, in its order (executor/outbox.py): the ended state, then
    # retain_run, then that transition's history.
    last = [_entry("r-ended", "02", "step.completed"), _entry("r-ended", "03", "run.completed")]
    ended.stack, ended.status, ended.outbox_history = ["h0", "h1"], "completed", last
    await stores.save_run(ended, {"h1": b'{"data":1}'})
    await stores.retain_run(ended)
    for entry in last:
        await stores.append_history(entry)
    assert len(await stores.list_history("r-ended")) == 3

    async def gone() -> bool:
        return (
            await stores.get_run("r-ended") is None
            and await stores.get_memos("r-ended") == {}
            and await stores.list_history("r-ended") == []
            and [r.run_id for r in await stores.list_runs("acct")] == ["r-open"]
            and [r.run_id for r in await stores.list_runs("acct", fn_id="fn")] == ["r-open"]
        )

    await aging.past(_retention_s(aging), gone)
    assert await stores.get_run_and_memos("r-ended") is None
    found = await stores.get_run_and_memos("r-open")
    assert found is not None and found[1] == {"m": b'{"data":1}'}
    assert [e.entry_id for e in await stores.list_history("r-open")] == ["01"]


async def test_an_event_and_the_runs_it_started_go_after_the_retention(aging: Aging) -> None:
    stores = aging.stores
    event = Event(
        internal_id="01E",
        receipt_id="01R",
        account_id="acct",
        name="app/signed.up",
        payload={"name": "app/signed.up", "data": {"n": 1}},
        received_ms=aging.now_ms(),
    )
    await stores.put_event(event)
    await stores.link_run("01E", "r1")
    assert await stores.get_event("01E") == event
    assert await stores.runs_for_event("01E") == ["r1"]

    async def gone() -> bool:
        return (
            await stores.get_event("01E") is None
            and await stores.list_events("acct") == []
            and await stores.list_events("acct", name="app/signed.up") == []
            and await stores.list_event_heads("acct") == []
            and await stores.runs_for_event("01E") == []
        )

    await aging.past(_retention_s(aging), gone)


async def test_a_dedupe_key_goes_when_its_ttl_is_up_and_a_live_one_stays(aging: Aging) -> None:
    stores = aging.stores
    now = aging.now_ms()
    assert await stores.claim("dedupe", "run-1", KEY_TTL_MS, now) is None
    assert await stores.claim("live", "run-2", LIVE_KEY_TTL_MS, now) is None

    async def gone() -> bool:
        # At time 0 every stored key is unexpired: None means the row itself is gone.
        return await stores.holder("dedupe", 0) is None

    await aging.past(KEY_TTL_MS / 1000, gone)
    # An expired key that is gone cannot be swapped back (`swap` takes an expired one).
    assert not await stores.swap("dedupe", "run-1", "run-3", KEY_TTL_MS, aging.now_ms())
    assert await stores.holder("live", aging.now_ms()) == "run-2"


async def test_the_dev_logs_dead_letters_go_after_their_retention(tmp_path: Path) -> None:
    """The dead-letter topic has no consumer group, so nothing trimmed it before: its records
    now go `--dead-letter-retention` after they were set aside, and stay gone after a restart."""
    clock, topic = FakeClock(), Topics().dead_letter
    db = Database(str(tmp_path / "state.db"))
    log = InProcLog(4, db, clock)
    sweeper = Sweeper(SqliteStores(db, clock=clock), log, topic, 120, clock)
    letters = DeadLetters(log, topic, "ingest")
    for key in ("acct-a", "acct-b"):
        await letters.put(LogRecord("headrace.intake", 0, 7, key, b"old", ()), ValueError("bad"))
    await clock.advance(60_000)
    await letters.put(LogRecord("headrace.intake", 0, 8, "acct-a", b"new", ()), ValueError("bad"))

    await clock.advance(59_999)
    await sweeper.sweep()
    assert sorted(r.value for r in log.newest(topic, 10)) == [b"new", b"old", b"old"]
    await clock.advance(1)
    await sweeper.sweep()
    [kept] = log.newest(topic, 10)
    assert DeadLetter.read(kept).record.value == b"new"
    assert [r.value for r in InProcLog(4, db, clock).newest(topic, 10)] == [b"new"]
    await clock.advance(60_000)
    await sweeper.sweep()
    assert log.newest(topic, 10) == []
    db.close()


@pytest.mark.kafka
async def test_the_kafka_dead_letter_topic_is_created_with_its_retention(
    kafka_bootstrap: str, kafka_topic_prefix: str
) -> None:
    topics = Topics(kafka_topic_prefix)
    log = KafkaLog(kafka_bootstrap, partitions=2, retention_ms={topics.dead_letter: 3_600_000})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await log.ensure_topics([topics.dead_letter, topics.work])
        described = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name)
                for name in (topics.dead_letter, topics.work)
            ]
        )
        retention = {
            resource[3]: {entry[0]: entry[1] for entry in resource[4]}["retention.ms"]
            for response in described
            for resource in response.resources
        }
        # The work topic keeps the broker's default.
        assert retention[topics.dead_letter] == "3600000"
        assert retention[topics.work] != "3600000"
    finally:
        await log.close()
        await admin.delete_topics([topics.dead_letter, topics.work])
        await admin.close()


async def test_a_sqlite_state_dir_from_before_retention_expires_from_its_upgrade(
    tmp_path: Path,
) -> None:
    """Rows written by a release without retention get their expiry when the store opens: an
    ended run and an event a retention later, an open run only after the longest open time."""
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE runs (run_id TEXT PRIMARY KEY, account_id TEXT, fn_id TEXT, body BLOB,
            version INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE event_receipts (receipt_id TEXT PRIMARY KEY, internal_id TEXT,
            account_id TEXT, name TEXT, body BLOB);
        CREATE TABLE event_runs (event_id TEXT, run_id TEXT, PRIMARY KEY (event_id, run_id));"""
    )
    ended = msgspec.structs.replace(_run("r-ended"), status="failed", version=1)
    for run in (ended, msgspec.structs.replace(_run("r-open"), version=1)):
        body = msgspec.msgpack.encode(run)
        old.execute("INSERT INTO runs VALUES (?, 'acct', 'fn', ?, 1)", (run.run_id, body))
    event = Event(internal_id="01E", account_id="acct", name="a", payload={}, received_ms=1)
    body = msgspec.msgpack.encode(event)
    old.execute("INSERT INTO event_receipts VALUES ('01E', '01E', 'acct', 'a', ?)", (body,))
    old.execute("INSERT INTO event_runs VALUES ('01E', 'r-ended')")
    old.commit()
    old.close()

    db = Database(path)
    aging = SqliteAging(db)
    stores = aging.stores

    async def gone() -> bool:
        return (
            await stores.get_run("r-ended") is None
            and await stores.get_event("01E") is None
            and await stores.runs_for_event("01E") == []
        )

    await aging.past(SQLITE_RETENTION_S, gone)
    assert [r.run_id for r in await stores.list_runs("acct")] == ["r-open"]
    db.close()
