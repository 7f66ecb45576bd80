"""The store ports' guarantees, checked on every adapter: SQLite (in memory and on disk) and
Cassandra, races included (calls in flight at once: on Cassandra, lightweight transactions).

Cassandra isolation: one keyspace per module, migrated once, emptied before each test. A fresh
keyspace per test (the `cassandra_keyspace` fixture) costs about 2 s a test on two cores: 1.3 s
to create the tables, and as long again to drop them; emptying every table costs a few tens of
milliseconds. The tests use fixed ids, so they need empty tables, not unique names.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec
import pytest

from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.errors import Conflict
from headrace.messages.model import LISTED_PAYLOAD_BYTES, Batch, Event, Pause
from headrace.messages.state import AppRecord, FunctionRecord, HistoryEntry, RunState, Timer
from headrace.ports.stores import Stores


def _run(run_id: str = "r1", **kw: object) -> RunState:
    return RunState(run_id=run_id, account_id="acct", fn_id="app-fn", app_id="app", **kw)  # type: ignore[arg-type]


async def test_a_run_is_created_once(stores: Stores) -> None:
    assert await stores.create_run(_run(status="running"))
    assert not await stores.create_run(_run(status="failed"))
    run = await stores.get_run("r1")
    assert run is not None and run.status == "running"


async def test_memos_are_written_with_the_run(stores: Stores) -> None:
    run = _run()
    assert await stores.create_run(run, {"h0": b'{"data":0}'})
    assert run.version == 1
    run.stack = ["h0", "h1"]
    await stores.save_run(run, {"h1": b'{"data":1}'})
    assert run.version == 2
    run.stack.append("h2")
    await stores.save_run(run, {"h2": b"null"})
    assert await stores.get_memos("r1") == {"h0": b'{"data":0}', "h1": b'{"data":1}', "h2": b"null"}
    saved = await stores.get_run("r1")
    assert saved is not None and saved.stack == ["h0", "h1", "h2"] and saved.version == 3
    assert await stores.get_run_and_memos("r1") == (saved, await stores.get_memos("r1"))
    assert await stores.get_run_and_memos("nothing") is None


async def test_a_run_is_read_with_the_keys_of_its_memos_alone(stores: Stores) -> None:
    run = _run()
    assert await stores.get_run_and_memo_keys("r1") is None
    await stores.create_run(run)
    assert await stores.get_run_and_memo_keys("r1") == (await stores.get_run("r1"), set())
    run.stack = ["h0", "h1"]
    await stores.save_run(run, {"h0": b'{"data":0}', "h1": b"x" * 100_000})
    found = await stores.get_run_and_memos("r1")
    assert found is not None
    assert await stores.get_run_and_memo_keys("r1") == (found[0], {"h0", "h1"})


async def test_a_save_appends_its_memos_and_keeps_every_earlier_one(stores: Stores) -> None:
    """Each save writes the memos of its own transition; what earlier saves wrote stays as it
    was, whether a later save brings memos or none."""
    run = _run(stack=["h0"])
    await stores.create_run(run, {"h0": b'{"data":0}'})
    written = {"h0": b'{"data":0}'}
    for i in range(1, 4):
        run.stack.append(f"h{i}")
        await stores.save_run(run, {f"h{i}": b"%d" % i * 1000})
        written[f"h{i}"] = b"%d" % i * 1000
        assert await stores.get_memos("r1") == written
    run.output = "done"
    await stores.save_run(run)
    assert await stores.get_memos("r1") == written
    found = await stores.get_run_and_memo_keys("r1")
    assert found is not None and found[0].version == 5 and found[1] == set(written)


async def test_a_run_read_while_it_is_written_has_the_memos_its_stack_names(
    stores: Stores,
) -> None:
    """Every read is of one write: the memos (and their keys) are those the state's stack
    names, however the read and the writes interleave."""
    run = _run()
    await stores.create_run(run)
    writing = True

    async def write() -> None:
        nonlocal writing
        for i in range(20):
            run.stack.append(f"h{i}")
            await stores.save_run(run, {f"h{i}": b"1"})
            await asyncio.sleep(0)
        writing = False

    async def read() -> int:
        reads = 0
        while writing:
            keyed = await stores.get_run_and_memo_keys("r1")
            valued = await stores.get_run_and_memos("r1")
            assert keyed is not None and valued is not None
            assert keyed[1] == set(keyed[0].stack) and valued[1].keys() == set(valued[0].stack)
            reads += 1
        return reads

    _, reads = await asyncio.gather(write(), read())
    assert reads > 0


async def test_of_two_writers_of_one_version_one_wins_and_the_other_writes_nothing(
    stores: Stores,
) -> None:
    """Two handlers of one run read the same state; the second to write gets Conflict and
    leaves neither its state nor its memos, so the winner's memo is never lost from the stack."""
    await stores.create_run(_run(stack=["a"]), {"a": b'{"data":"a"}'})
    first = await stores.get_run_and_memos("r1")
    second = await stores.get_run_and_memos("r1")
    assert first is not None and second is not None and first == second
    winner, loser = first[0], second[0]
    winner.stack.append("b")
    await stores.save_run(winner, {"b": b'{"data":"b1"}'})
    loser.stack.append("b")
    loser.output = "stale"
    with pytest.raises(Conflict):
        await stores.save_run(loser, {"b": b'{"data":"b2"}', "c": b'{"data":"c"}'})
    assert loser.version == 1
    found = await stores.get_run_and_memos("r1")
    assert found is not None
    stored, memos = found
    assert stored.stack == ["a", "b"] and stored.output is None and stored.version == 2
    assert memos == {"a": b'{"data":"a"}', "b": b'{"data":"b1"}'}
    # Read again, the loser decides from the state that won, and its write goes through.
    stored.stack.append("c")
    await stores.save_run(stored, {"c": b'{"data":"c"}'})
    assert (await stores.get_memos("r1")).keys() == {"a", "b", "c"}


async def test_writers_racing_for_one_version_produce_one_winner(stores: Stores) -> None:
    await stores.create_run(_run())
    copies = [await stores.get_run("r1") for _ in range(6)]

    async def write(i: int, run: RunState | None) -> bool:
        assert run is not None
        run.output = i
        try:
            await stores.save_run(run, {f"h{i}": b"1"})
        except Conflict:
            return False
        return True

    won = await asyncio.gather(*(write(i, run) for i, run in enumerate(copies)))
    assert won.count(True) == 1
    stored = await stores.get_run("r1")
    assert stored is not None and stored.output == won.index(True) and stored.version == 2
    assert await stores.get_memos("r1") == {f"h{won.index(True)}": b"1"}


async def test_a_run_that_does_not_exist_cannot_be_saved(stores: Stores) -> None:
    with pytest.raises(Conflict):
        await stores.save_run(_run(version=3))
    assert await stores.get_run("r1") is None


async def test_a_create_that_finds_the_run_writes_none_of_its_memos(stores: Stores) -> None:
    assert await stores.create_run(_run(), {"h1": b"1"})
    again = _run(output="second")
    assert not await stores.create_run(again, {"h1": b"2", "h2": b"2"})
    assert again.version == 0
    assert await stores.get_memos("r1") == {"h1": b"1"}


async def test_runs_are_listed_newest_first_per_account_and_function(stores: Stores) -> None:
    for run_id, fn_id, account_id in (
        ("01", "f", "acct"),
        ("03", "g", "acct"),
        ("02", "f", "acct"),
        ("04", "f", "other"),
    ):
        await stores.create_run(
            RunState(run_id=run_id, account_id=account_id, fn_id=fn_id, app_id="app")
        )
    assert [r.run_id for r in await stores.list_runs("acct")] == ["03", "02", "01"]
    assert [r.run_id for r in await stores.list_runs("acct", limit=2)] == ["03", "02"]
    assert [r.run_id for r in await stores.list_runs("acct", fn_id="f")] == ["02", "01"]
    assert await stores.list_runs("nobody") == []


async def test_history_is_idempotent_and_ordered_by_id(stores: Stores) -> None:
    for entry_id in ("02", "01", "02"):
        await stores.append_history(
            HistoryEntry(entry_id=entry_id, run_id="r1", ts_ms=1, kind="step.completed")
        )
    assert [h.entry_id for h in await stores.list_history("r1")] == ["01", "02"]


async def test_a_runs_history_holds_its_last_transition_before_it_is_appended(
    stores: Stores,
) -> None:
    # The executor writes the run with its transition's entries, then appends them: a reader
    # that sees the run cancelled must find `run.cancelled` in between.
    run = _run()
    await stores.create_run(run)
    await stores.append_history(
        HistoryEntry(entry_id="01", run_id="r1", ts_ms=1, kind="run.started")
    )
    last = HistoryEntry(entry_id="02", run_id="r1", ts_ms=2, kind="run.cancelled")
    run.status, run.outbox_history = "cancelled", [last]
    await stores.save_run(run)
    assert [h.kind for h in await stores.list_history("r1")] == ["run.started", "run.cancelled"]
    await stores.append_history(last)
    assert [h.kind for h in await stores.list_history("r1")] == ["run.started", "run.cancelled"]


async def test_keys_are_claimed_by_the_first_caller_until_they_expire(stores: Stores) -> None:
    assert await stores.claim("k", "first", ttl_ms=1000, now_ms=0) is None
    assert await stores.claim("k", "second", ttl_ms=1000, now_ms=500) == "first"
    assert await stores.claim("k", "third", ttl_ms=1000, now_ms=1500) is None


async def test_racing_claims_have_one_winner_the_first_caller(stores: Stores) -> None:
    results = await asyncio.gather(
        *(stores.claim("fresh", f"v{i}", ttl_ms=60_000, now_ms=0) for i in range(8))
    )
    assert results.count(None) == 1
    winner = f"v{results.index(None)}"
    assert all(r in (None, winner) for r in results)

    # Expired by the callers' clock but still stored: taken over by exactly one of them.
    assert await stores.claim("old", "stale", ttl_ms=1000, now_ms=0) is None
    results = await asyncio.gather(
        *(stores.claim("old", f"w{i}", ttl_ms=60_000, now_ms=5000) for i in range(8))
    )
    assert results.count(None) == 1
    winner = f"w{results.index(None)}"
    assert all(r in (None, winner) for r in results)


async def test_racing_creates_have_one_winner(stores: Stores) -> None:
    created = await asyncio.gather(*(stores.create_run(_run(output=i)) for i in range(6)))
    assert created.count(True) == 1
    run = await stores.get_run("r1")
    assert run is not None and run.output == created.index(True)


async def test_a_keys_holder_is_read_until_it_expires(stores: Stores) -> None:
    assert await stores.holder("h", now_ms=0) is None
    assert await stores.claim("h", "pause-1", ttl_ms=1000, now_ms=0) is None
    assert await stores.holder("h", now_ms=999) == "pause-1"
    assert await stores.holder("h", now_ms=1000) is None
    assert await stores.holder("other", now_ms=0) is None


async def test_a_key_is_swapped_only_from_the_value_it_holds(stores: Stores) -> None:
    assert await stores.claim("s", "run-1", ttl_ms=1000, now_ms=0) is None
    assert not await stores.swap("s", "run-0", "run-2", ttl_ms=1000, now_ms=10)
    assert await stores.swap("s", "run-1", "run-2", ttl_ms=5000, now_ms=10)
    assert not await stores.swap("s", "run-1", "run-3", ttl_ms=1000, now_ms=20)
    # The swap renewed the expiry: the key still holds at 2 s.
    assert await stores.claim("s", "run-4", ttl_ms=1000, now_ms=2000) == "run-2"
    assert not await stores.swap("missing", "run-1", "run-2", ttl_ms=1000, now_ms=0)


async def test_timers_are_due_by_partition_and_time(stores: Stores) -> None:
    for timer_id, partition, fire in (("a", 0, 30), ("b", 0, 10), ("c", 1, 5), ("a", 0, 99)):
        await stores.put_timer(
            Timer(timer_id=timer_id, partition=partition, fire_ms=fire, record=b"x")
        )
    assert [t.timer_id for t in await stores.timers_due(0, 30)] == ["b", "a"]
    await stores.delete_timer(0, "b")
    assert [t.timer_id for t in await stores.timers_due(0, 100)] == ["a"]
    assert [t.timer_id for t in await stores.timers_due(1, 100)] == ["c"]


async def test_a_pause_is_deleted_by_the_first_caller_only(stores: Stores) -> None:
    pause = Pause(
        pause_id="r1:h",
        account_id="acct",
        run_id="r1",
        fn_id="f",
        kind="wait",
        event_name="e",
        expires_ms=10,
    )
    await stores.put_pause(pause, partition=2)
    assert await stores.pauses_for_partition(2) == [pause]
    assert await stores.pauses_for_run("r1") == [pause]
    deleted = await asyncio.gather(*(stores.delete_pause("r1:h") for _ in range(6)))
    assert deleted.count(True) == 1
    assert not await stores.delete_pause("r1:h")
    assert await stores.get_pause("r1:h") is None
    assert await stores.pauses_for_partition(2) == []
    assert await stores.pauses_for_run("r1") == []


async def test_events_and_the_runs_they_started(stores: Stores) -> None:
    for i, name in enumerate(["a", "b", "a"]):
        await stores.put_event(
            Event(
                internal_id=f"0{i}",
                account_id="acct",
                name=name,
                payload={"name": name},
                received_ms=i,
            )
        )
    assert [e.internal_id for e in await stores.list_events("acct", name="a")] == ["02", "00"]
    assert await stores.list_events("other") == []
    # A list's heads: the same events, read without their payloads.
    heads = await stores.list_event_heads("acct", name="a")
    assert [(h.internal_id, h.name, h.received_ms) for h in heads] == [
        ("02", "a", 2),
        ("00", "a", 0),
    ]
    assert [h.internal_id for h in await stores.list_event_heads("acct", limit=2)] == ["02", "01"]
    await stores.link_run("00", "r2")
    await stores.link_run("00", "r1")
    await stores.link_run("00", "r1")
    assert await stores.runs_for_event("00") == ["r1", "r2"]


async def test_a_listing_leaves_a_large_payload_out_and_the_event_keeps_it(
    stores: Stores,
) -> None:
    big = {"id": "big-1", "ts": 5, "v": "2", "data": {"blob": "x" * (2 * LISTED_PAYLOAD_BYTES)}}
    small = {"id": "small-1", "data": {"n": 1}, "user": {"u": 1}}
    for i, payload in enumerate([small, big]):
        await stores.put_event(
            Event(internal_id=f"0{i}", account_id="acct", name="e", payload=payload, received_ms=i)
        )

    [big_listed, small_listed] = await stores.list_event_listings("acct")
    assert (big_listed.internal_id, big_listed.omitted) == ("01", True)
    assert big_listed.payload == {"id": "big-1", "ts": 5, "v": "2"}
    assert (small_listed.payload, small_listed.omitted) == (small, False)
    # The event itself, and a list of whole events, still have the payload whole.
    whole = await stores.get_event("01")
    assert whole is not None and whole.payload == big
    assert [e.payload for e in await stores.list_events("acct")] == [big, small]


async def test_apps_and_functions_per_account(stores: Stores) -> None:
    await stores.put_app(AppRecord(app_id="app", account_id="acct", url="http://a"))
    await stores.put_app(AppRecord(app_id="app", account_id="acct", url="http://b"))
    await stores.put_function(
        FunctionRecord(fn_id="app-f", account_id="acct", app_id="app", name="f", config={"x": 1})
    )
    app = await stores.get_app("acct", "app")
    assert app is not None and app.url == "http://b"
    assert await stores.get_app("other", "app") is None
    assert [f.config for f in await stores.list_functions("acct")] == [{"x": 1}]


async def test_batches_are_replaced_whole_and_listed_by_partition(stores: Stores) -> None:
    batch = Batch(
        batch_key="fn:k",
        batch_id="run",
        account_id="acct",
        fn_id="fn",
        events=[{"name": "e"}],
        event_ids=["e1"],
    )
    await stores.put_batch(batch, partition=1)
    batch.events.append({"name": "e"})
    batch.event_ids.append("e2")
    await stores.put_batch(batch, partition=1)
    [loaded] = await stores.batches_for_partition(1)
    assert loaded.event_ids == ["e1", "e2"]
    assert await stores.batches_for_partition(0) == []
    await stores.delete_batch("fn:k")
    assert await stores.batches_for_partition(1) == []


async def test_flow_state_is_kept_per_partition_and_kind_and_replaced_by_id(
    stores: Stores,
) -> None:
    await stores.put_flow(1, "lease", "b", b"1")
    await stores.put_flow(1, "lease", "a", b"2")
    await stores.put_flow(1, "lease", "a", b"3")
    await stores.put_flow(1, "wait", "c", b"4")
    await stores.put_flow(2, "lease", "d", b"5")
    assert await stores.flow_entries(1, "lease") == [("a", b"3"), ("b", b"1")]
    await stores.delete_flow(1, "lease", "a")
    await stores.delete_flow(1, "lease", "missing")
    assert await stores.flow_entries(1, "lease") == [("b", b"1")]
    assert await stores.flow_entries(1, "wait") == [("c", b"4")]
    assert await stores.flow_entries(2, "lease") == [("d", b"5")]
    assert await stores.flow_entries(3, "lease") == []


async def test_a_sqlite_state_dir_from_before_run_versions_is_upgraded(tmp_path: Path) -> None:
    """`headrace dev` reopens a state directory written by an older release: its runs read as
    version 0, and their next write is version-checked like any other."""
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, account_id TEXT, fn_id TEXT, body BLOB)"
    )
    body = msgspec.msgpack.encode(_run(stack=["a"]))
    old.execute("INSERT INTO runs VALUES ('r1', 'acct', 'app-fn', ?)", (body,))
    old.commit()
    old.close()

    db = Database(path)
    stores = SqliteStores(db)
    first, second = await stores.get_run("r1"), await stores.get_run("r1")
    assert first is not None and second is not None and first.version == 0
    await stores.save_run(first, {"b": b"1"})
    with pytest.raises(Conflict):
        await stores.save_run(second)
    stored = await stores.get_run("r1")
    assert stored is not None and stored.version == 1 and stored.stack == ["a"]
    db.close()


async def test_a_sqlite_state_dir_from_before_listings_lists_its_events_whole(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE event_receipts (receipt_id TEXT PRIMARY KEY, internal_id TEXT, "
        "account_id TEXT, name TEXT, body BLOB, expires_ms INTEGER)"
    )
    event = Event(internal_id="01", account_id="acct", name="a", payload={"data": 1}, received_ms=1)
    old.execute(
        "INSERT INTO event_receipts VALUES ('01', '01', 'acct', 'a', ?, 9e15)",
        (msgspec.msgpack.encode(event),),
    )
    old.commit()
    old.close()

    db = Database(path)
    stores = SqliteStores(db)
    [listed] = await stores.list_event_listings("acct")
    assert (listed.internal_id, listed.payload, listed.omitted) == ("01", {"data": 1}, False)
    assert [h.name for h in await stores.list_event_heads("acct")] == ["a"]
    db.close()


async def test_events_listed_without_the_engines_own(stores: Stores) -> None:
    """`internal=False` leaves out the names Inngest reserves (inngest/...), and still lists
    the newest `limit` of the others, however many reserved ones came in between."""
    names = ["a", "inngest/function.finished", "b", "inngest/function.invoked", "inngest/x", "c"]
    for i, name in enumerate(names):
        await stores.put_event(
            Event(
                internal_id=f"0{i}",
                account_id="acct",
                name=name,
                payload={"name": name},
                received_ms=i,
            )
        )
    listed = await stores.list_events("acct", limit=2, internal=False)
    assert [e.name for e in listed] == ["c", "b"]
    assert [e.name for e in await stores.list_events("acct", internal=False)] == ["c", "b", "a"]
    assert len(await stores.list_events("acct")) == 6
    assert await stores.list_events("acct", name="inngest/x", internal=False) == []
    assert [e.internal_id for e in await stores.list_events("acct", name="inngest/x")] == ["04"]
