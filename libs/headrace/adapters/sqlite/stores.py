"""The stores on SQLite (see headrace.ports.stores for the guarantees).

Retention: runs, events and their links carry `expires_ms`, set on the injected clock at each
write as Cassandra sets its TTLs (adapters/cassandra/runs.py): an open run the retention plus
the longest a run may stay open, an ended run and an event the retention. `sweep` deletes what
has expired (a run with its memos and history) and the keys past their own expiry; `headrace
dev` calls it every minute (dev/retention.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from headrace.adapters.sqlite.database import Database
from headrace.core.clock import Clock, SystemClock
from headrace.core.errors import Conflict
from headrace.core.retention import DEFAULT_RETENTION_S, MAX_OPEN_S
from headrace.messages.model import (
    INTERNAL_PREFIX,
    Batch,
    Event,
    EventHead,
    EventListing,
    Pause,
    listing_of,
)
from headrace.messages.state import (
    ENDED,
    AppRecord,
    FunctionRecord,
    HistoryEntry,
    RunState,
    Timer,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (account_id TEXT, app_id TEXT, body BLOB,
    PRIMARY KEY (account_id, app_id));
CREATE TABLE IF NOT EXISTS functions (account_id TEXT, fn_id TEXT, body BLOB,
    PRIMARY KEY (account_id, fn_id));
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, account_id TEXT, fn_id TEXT, body BLOB,
    version INTEGER NOT NULL DEFAULT 0, expires_ms INTEGER);
CREATE INDEX IF NOT EXISTS runs_by_account ON runs (account_id, run_id);
CREATE TABLE IF NOT EXISTS memos (run_id TEXT, hash TEXT, value BLOB, PRIMARY KEY (run_id, hash));
CREATE TABLE IF NOT EXISTS history (run_id TEXT, entry_id TEXT, body BLOB,
    PRIMARY KEY (run_id, entry_id));
CREATE TABLE IF NOT EXISTS event_receipts (receipt_id TEXT PRIMARY KEY, internal_id TEXT,
    account_id TEXT, name TEXT, listing BLOB, body BLOB, expires_ms INTEGER);
CREATE INDEX IF NOT EXISTS event_receipts_by_id ON event_receipts (internal_id, receipt_id);
CREATE INDEX IF NOT EXISTS event_receipts_by_name ON event_receipts (account_id, name, receipt_id);
CREATE TABLE IF NOT EXISTS event_runs (event_id TEXT, run_id TEXT, expires_ms INTEGER,
    PRIMARY KEY (event_id, run_id));
CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, value TEXT, expires_ms INTEGER);
CREATE TABLE IF NOT EXISTS timers (partition INTEGER, timer_id TEXT, fire_ms INTEGER, record BLOB,
    PRIMARY KEY (partition, timer_id));
CREATE INDEX IF NOT EXISTS timers_by_time ON timers (partition, fire_ms);
CREATE TABLE IF NOT EXISTS pauses (pause_id TEXT PRIMARY KEY, partition INTEGER, run_id TEXT,
    body BLOB);
CREATE INDEX IF NOT EXISTS pauses_by_partition ON pauses (partition);
CREATE INDEX IF NOT EXISTS pauses_by_run ON pauses (run_id);
CREATE TABLE IF NOT EXISTS batches (batch_key TEXT PRIMARY KEY, partition INTEGER, body BLOB);
CREATE INDEX IF NOT EXISTS batches_by_partition ON batches (partition);
CREATE TABLE IF NOT EXISTS flow_state (partition INTEGER, kind TEXT, entry_id TEXT, body BLOB,
    PRIMARY KEY (partition, kind, entry_id));
"""

# The sweep's indexes, made once every table has its `expires_ms`.
_EXPIRY_INDEXES = """
CREATE INDEX IF NOT EXISTS runs_by_expiry ON runs (expires_ms);
CREATE INDEX IF NOT EXISTS event_receipts_by_expiry ON event_receipts (expires_ms);
CREATE INDEX IF NOT EXISTS event_runs_by_expiry ON event_runs (expires_ms);
CREATE INDEX IF NOT EXISTS keys_by_expiry ON keys (expires_ms);
"""

_enc = msgspec.msgpack.Encoder()
T = TypeVar("T")
# What lists read: an event's listing, or its body where it has none (stored before listings).
_LISTING = "COALESCE(listing, body)"


def _columns(conn: Any, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _create_schema(conn: Any) -> None:
    conn.executescript(_SCHEMA)
    if "version" not in _columns(conn, "runs"):
        # A state directory from before versioned runs: its runs read as version 0.
        conn.execute("ALTER TABLE runs ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
    # A state directory from before retention: its rows get an expiry at open (`_date_legacy`).
    for table in ("runs", "event_receipts", "event_runs"):
        if "expires_ms" not in _columns(conn, table):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN expires_ms INTEGER")
    conn.executescript(_EXPIRY_INDEXES)
    if "listing" not in _columns(conn, "event_receipts"):
        # From before listings: lists read those rows' bodies (which decode as listings).
        conn.execute("ALTER TABLE event_receipts ADD COLUMN listing BLOB")


def _insert_memos(conn: Any, run_id: str, memos: dict[str, bytes] | None) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO memos VALUES (?, ?, ?)",
        [(run_id, step_hash, value) for step_hash, value in (memos or {}).items()],
    )


def _dec(kind: Any, blob: bytes) -> Any:
    return msgspec.msgpack.decode(blob, type=kind)


class SqliteStores:
    """All the stores in one SQLite file (":memory:" for a throwaway run); `retention_s` as for
    CassandraStores, counted on `clock`."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock | None = None,
        retention_s: int = DEFAULT_RETENTION_S,
    ) -> None:
        self._db = db
        self._clock = clock or SystemClock()
        self._retention_ms = retention_s * 1000
        db.run_sync(_create_schema)
        db.run_sync(self._date_legacy)

    def _expires_ms(self, run: RunState) -> int:
        open_ms = 0 if run.status in ENDED else MAX_OPEN_S * 1000
        return self._clock.now_ms() + self._retention_ms + open_ms

    def _date_legacy(self, conn: Any) -> None:
        """Rows written before retention existed expire as if written now."""
        expires = self._clock.now_ms() + self._retention_ms
        for table in ("event_receipts", "event_runs"):
            conn.execute(f"UPDATE {table} SET expires_ms = ? WHERE expires_ms IS NULL", (expires,))
        legacy = conn.execute("SELECT run_id, body FROM runs WHERE expires_ms IS NULL").fetchall()
        conn.executemany(
            "UPDATE runs SET expires_ms = ? WHERE run_id = ?",
            [(self._expires_ms(_dec(RunState, body)), run_id) for run_id, body in legacy],
        )

    async def sweep(self) -> dict[str, int]:
        """Delete every row that has expired by the clock; how many of each kind."""
        now = self._clock.now_ms()
        expired_runs = "SELECT run_id FROM runs WHERE expires_ms <= ?"

        def apply(conn: Any) -> dict[str, int]:
            def delete(sql: str) -> int:
                return int(conn.execute(sql, (now,)).rowcount)

            return {
                "memos": delete(f"DELETE FROM memos WHERE run_id IN ({expired_runs})"),
                "history": delete(f"DELETE FROM history WHERE run_id IN ({expired_runs})"),
                "runs": delete("DELETE FROM runs WHERE expires_ms <= ?"),
                "events": delete("DELETE FROM event_receipts WHERE expires_ms <= ?"),
                "event_links": delete("DELETE FROM event_runs WHERE expires_ms <= ?"),
                "keys": delete("DELETE FROM keys WHERE expires_ms <= ?"),
            }

        return await self._db.atomically(apply)

    async def close(self) -> None:
        """The database belongs to whoever opened it."""

    # --- apps and functions ---

    async def put_app(self, app: AppRecord) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO apps VALUES (?, ?, ?)",
            (app.account_id, app.app_id, _enc.encode(app)),
        )

    async def get_app(self, account_id: str, app_id: str) -> AppRecord | None:
        rows = await self._db.execute(
            "SELECT body FROM apps WHERE account_id = ? AND app_id = ?", (account_id, app_id)
        )
        return _dec(AppRecord, rows[0][0]) if rows else None

    async def list_apps(self, account_id: str) -> list[AppRecord]:
        rows = await self._db.execute(
            "SELECT body FROM apps WHERE account_id = ? ORDER BY app_id", (account_id,)
        )
        return [_dec(AppRecord, r[0]) for r in rows]

    async def put_function(self, fn: FunctionRecord) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO functions VALUES (?, ?, ?)",
            (fn.account_id, fn.fn_id, _enc.encode(fn)),
        )

    async def get_function(self, account_id: str, fn_id: str) -> FunctionRecord | None:
        rows = await self._db.execute(
            "SELECT body FROM functions WHERE account_id = ? AND fn_id = ?", (account_id, fn_id)
        )
        return _dec(FunctionRecord, rows[0][0]) if rows else None

    async def list_functions(self, account_id: str) -> list[FunctionRecord]:
        rows = await self._db.execute(
            "SELECT body FROM functions WHERE account_id = ? ORDER BY fn_id", (account_id,)
        )
        return [_dec(FunctionRecord, r[0]) for r in rows]

    # --- runs ---

    async def create_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> bool:
        stored = msgspec.structs.replace(run, version=1)
        expires = self._expires_ms(run)

        def insert(conn: Any) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO runs (run_id, account_id, fn_id, body, version, expires_ms) "
                "VALUES (?, ?, ?, ?, 1, ?)",
                (run.run_id, run.account_id, run.fn_id, _enc.encode(stored), expires),
            )
            if cur.rowcount:
                _insert_memos(conn, run.run_id, memos)
            return bool(cur.rowcount)

        created = await self._db.atomically(insert)
        if created:
            run.version = 1
        return created

    async def get_run(self, run_id: str) -> RunState | None:
        rows = await self._db.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,))
        return _dec(RunState, rows[0][0]) if rows else None

    async def get_run_and_memos(self, run_id: str) -> tuple[RunState, dict[str, bytes]] | None:
        def read(conn: Any) -> tuple[RunState, dict[str, bytes]] | None:
            # One connection on one thread runs every statement: nothing writes between these.
            row = conn.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            memos = conn.execute("SELECT hash, value FROM memos WHERE run_id = ?", (run_id,))
            return _dec(RunState, row[0]), {h: v for h, v in memos}

        return await self._db.run(read)

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        stored = msgspec.structs.replace(run, version=run.version + 1)
        expires = self._expires_ms(run)

        def update(conn: Any) -> bool:
            cur = conn.execute(
                "UPDATE runs SET body = ?, version = ?, expires_ms = ? "
                "WHERE run_id = ? AND version = ?",
                (_enc.encode(stored), stored.version, expires, run.run_id, run.version),
            )
            if cur.rowcount:
                _insert_memos(conn, run.run_id, memos)
            return bool(cur.rowcount)

        if not await self._db.atomically(update):
            raise Conflict(f"run {run.run_id} was written since version {run.version}")
        run.version = stored.version

    async def retain_run(self, run: RunState) -> None:
        """The run's memos and history go with it (`sweep`): only the run's expiry is reset."""
        await self._db.execute(
            "UPDATE runs SET expires_ms = ? WHERE run_id = ?",
            (self._clock.now_ms() + self._retention_ms, run.run_id),
        )

    async def get_memos(self, run_id: str) -> dict[str, bytes]:
        rows = await self._db.execute("SELECT hash, value FROM memos WHERE run_id = ?", (run_id,))
        return {r[0]: r[1] for r in rows}

    async def list_runs(
        self, account_id: str, *, limit: int = 50, fn_id: str | None = None
    ) -> list[RunState]:
        if fn_id is None:
            rows = await self._db.execute(
                "SELECT body FROM runs WHERE account_id = ? ORDER BY run_id DESC LIMIT ?",
                (account_id, limit),
            )
        else:
            rows = await self._db.execute(
                "SELECT body FROM runs WHERE account_id = ? AND fn_id = ? "
                "ORDER BY run_id DESC LIMIT ?",
                (account_id, fn_id, limit),
            )
        return [_dec(RunState, r[0]) for r in rows]

    async def append_history(self, entry: HistoryEntry) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO history VALUES (?, ?, ?)",
            (entry.run_id, entry.entry_id, _enc.encode(entry)),
        )

    async def list_history(self, run_id: str) -> list[HistoryEntry]:
        rows = await self._db.execute(
            "SELECT body FROM history WHERE run_id = ? ORDER BY entry_id", (run_id,)
        )
        return [_dec(HistoryEntry, r[0]) for r in rows]

    # --- events ---

    async def put_event(self, event: Event) -> None:
        # Events made by headrace itself have no receipt; their internal id is unique.
        receipt = event.receipt_id or event.internal_id
        body = _enc.encode(event)
        await self._db.execute(
            "INSERT OR IGNORE INTO event_receipts "
            "(receipt_id, internal_id, account_id, name, listing, body, expires_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                receipt,
                event.internal_id,
                event.account_id,
                event.name,
                _enc.encode(listing_of(event, len(body))),
                body,
                self._clock.now_ms() + self._retention_ms,
            ),
        )

    async def get_event(self, internal_id: str) -> Event | None:
        rows = await self._db.execute(
            "SELECT body FROM event_receipts WHERE internal_id = ? ORDER BY receipt_id LIMIT 1",
            (internal_id,),
        )
        return _dec(Event, rows[0][0]) if rows else None

    async def list_events(
        self, account_id: str, *, name: str | None = None, limit: int = 50, internal: bool = True
    ) -> list[Event]:
        return await self._list_events(Event, "body", account_id, name, limit, internal)

    async def list_event_heads(
        self, account_id: str, *, name: str | None = None, limit: int = 50
    ) -> list[EventHead]:
        return await self._list_events(EventHead, _LISTING, account_id, name, limit, True)

    async def list_event_listings(
        self, account_id: str, *, name: str | None = None, limit: int = 50, internal: bool = True
    ) -> list[EventListing]:
        return await self._list_events(EventListing, _LISTING, account_id, name, limit, internal)

    async def _list_events(
        self,
        kind: type[T],
        column: str,
        account_id: str,
        name: str | None,
        limit: int,
        internal: bool,
    ) -> list[T]:
        where, params = "account_id = ?", [account_id]
        if name is not None:
            where, params = where + " AND name = ?", [*params, name]
        if not internal:
            prefix = [len(INTERNAL_PREFIX), INTERNAL_PREFIX]
            where, params = where + " AND substr(name, 1, ?) != ?", [*params, *prefix]
        rows = await self._db.execute(
            f"SELECT {column} FROM event_receipts WHERE {where} ORDER BY receipt_id DESC LIMIT ?",
            (*params, limit),
        )
        return [_dec(kind, r[0]) for r in rows]

    async def link_run(self, event_id: str, run_id: str) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO event_runs (event_id, run_id, expires_ms) VALUES (?, ?, ?)",
            (event_id, run_id, self._clock.now_ms() + self._retention_ms),
        )

    async def runs_for_event(self, event_id: str) -> list[str]:
        rows = await self._db.execute(
            "SELECT run_id FROM event_runs WHERE event_id = ? ORDER BY run_id", (event_id,)
        )
        return [r[0] for r in rows]

    # --- idempotency keys ---

    async def claim(self, key: str, value: str, ttl_ms: int, now_ms: int) -> str | None:
        def apply(conn: Any) -> str | None:
            row = conn.execute(
                "SELECT value, expires_ms FROM keys WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[1] > now_ms:
                return str(row[0])
            conn.execute(
                "INSERT OR REPLACE INTO keys VALUES (?, ?, ?)", (key, value, now_ms + ttl_ms)
            )
            return None

        return await self._db.run(apply)

    async def swap(self, key: str, expected: str, value: str, ttl_ms: int, now_ms: int) -> bool:
        def apply(conn: Any) -> bool:
            cursor = conn.execute(
                "UPDATE keys SET value = ?, expires_ms = ? WHERE key = ? AND value = ?",
                (value, now_ms + ttl_ms, key, expected),
            )
            return bool(cursor.rowcount)

        return await self._db.run(apply)

    async def holder(self, key: str, now_ms: int) -> str | None:
        rows = await self._db.execute(
            "SELECT value FROM keys WHERE key = ? AND expires_ms > ?", (key, now_ms)
        )
        return str(rows[0][0]) if rows else None

    # --- timers ---

    async def put_timer(self, timer: Timer) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO timers VALUES (?, ?, ?, ?)",
            (timer.partition, timer.timer_id, timer.fire_ms, timer.record),
        )

    async def delete_timer(self, partition: int, timer_id: str) -> None:
        await self._db.execute(
            "DELETE FROM timers WHERE partition = ? AND timer_id = ?", (partition, timer_id)
        )

    async def timers_due(self, partition: int, until_ms: int) -> list[Timer]:
        rows = await self._db.execute(
            "SELECT timer_id, fire_ms, record FROM timers WHERE partition = ? AND fire_ms <= ? "
            "ORDER BY fire_ms, timer_id",
            (partition, until_ms),
        )
        return [Timer(timer_id=r[0], partition=partition, fire_ms=r[1], record=r[2]) for r in rows]

    # --- pauses ---

    async def put_pause(self, pause: Pause, partition: int) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO pauses VALUES (?, ?, ?, ?)",
            (pause.pause_id, partition, pause.run_id, _enc.encode(pause)),
        )

    async def delete_pause(self, pause_id: str) -> bool:
        def apply(conn: Any) -> bool:
            return bool(conn.execute("DELETE FROM pauses WHERE pause_id = ?", (pause_id,)).rowcount)

        return await self._db.run(apply)

    async def get_pause(self, pause_id: str) -> Pause | None:
        rows = await self._db.execute("SELECT body FROM pauses WHERE pause_id = ?", (pause_id,))
        return _dec(Pause, rows[0][0]) if rows else None

    async def pauses_for_partition(self, partition: int) -> list[Pause]:
        rows = await self._db.execute(
            "SELECT body FROM pauses WHERE partition = ? ORDER BY pause_id", (partition,)
        )
        return [_dec(Pause, r[0]) for r in rows]

    async def pauses_for_run(self, run_id: str) -> list[Pause]:
        rows = await self._db.execute("SELECT body FROM pauses WHERE run_id = ?", (run_id,))
        return [_dec(Pause, r[0]) for r in rows]

    # --- batches ---

    async def put_batch(self, batch: Batch, partition: int) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO batches VALUES (?, ?, ?)",
            (batch.batch_key, partition, _enc.encode(batch)),
        )

    async def delete_batch(self, batch_key: str) -> None:
        await self._db.execute("DELETE FROM batches WHERE batch_key = ?", (batch_key,))

    async def batches_for_partition(self, partition: int) -> list[Batch]:
        rows = await self._db.execute(
            "SELECT body FROM batches WHERE partition = ? ORDER BY batch_key", (partition,)
        )
        return [_dec(Batch, r[0]) for r in rows]

    # --- flow control ---

    async def put_flow(self, partition: int, kind: str, entry_id: str, body: bytes) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO flow_state VALUES (?, ?, ?, ?)",
            (partition, kind, entry_id, body),
        )

    async def delete_flow(self, partition: int, kind: str, entry_id: str) -> None:
        await self._db.execute(
            "DELETE FROM flow_state WHERE partition = ? AND kind = ? AND entry_id = ?",
            (partition, kind, entry_id),
        )

    async def flow_entries(self, partition: int, kind: str) -> list[tuple[str, bytes]]:
        rows = await self._db.execute(
            "SELECT entry_id, body FROM flow_state WHERE partition = ? AND kind = ? "
            "ORDER BY entry_id",
            (partition, kind),
        )
        return [(r[0], r[1]) for r in rows]
