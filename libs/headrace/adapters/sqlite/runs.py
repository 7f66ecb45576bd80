"""Runs, their memos and their history. A run's row carries a version, and a write of it is
conditional on the version it was computed from. Its `expires_ms` is set at each write (see
stores.py for retention); its memos and history expire with it."""

from __future__ import annotations

from typing import Any

import msgspec

from headrace.adapters.sqlite.database import Database
from headrace.core.clock import Clock
from headrace.core.errors import Conflict
from headrace.core.retention import MAX_OPEN_S
from headrace.messages.state import ENDED, HistoryEntry, RunState, with_last_transition

_enc = msgspec.msgpack.Encoder()
_run = msgspec.msgpack.Decoder(RunState)
_entry = msgspec.msgpack.Decoder(HistoryEntry)


def _insert_memos(conn: Any, run_id: str, memos: dict[str, bytes] | None) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO memos VALUES (?, ?, ?)",
        [(run_id, step_hash, value) for step_hash, value in (memos or {}).items()],
    )


class RunTables:
    def __init__(self, db: Database, clock: Clock, retention_s: int) -> None:
        self._db = db
        self._clock = clock
        self._retention_ms = retention_s * 1000

    def _run_expires_ms(self, run: RunState) -> int:
        open_ms = 0 if run.status in ENDED else MAX_OPEN_S * 1000
        return self._clock.now_ms() + self._retention_ms + open_ms

    async def create_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> bool:
        stored = msgspec.structs.replace(run, version=1)
        expires = self._run_expires_ms(run)

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
        return _run.decode(rows[0][0]) if rows else None

    async def get_run_and_memos(self, run_id: str) -> tuple[RunState, dict[str, bytes]] | None:
        def read(conn: Any) -> tuple[RunState, dict[str, bytes]] | None:
            # One connection on one thread runs every statement: nothing writes between these.
            row = conn.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            memos = conn.execute("SELECT hash, value FROM memos WHERE run_id = ?", (run_id,))
            return _run.decode(row[0]), {h: v for h, v in memos}

        return await self._db.run(read)

    async def get_run_and_memo_keys(self, run_id: str) -> tuple[RunState, set[str]] | None:
        def read(conn: Any) -> tuple[RunState, set[str]] | None:
            # As get_run_and_memos; the hashes are read from the primary key's index alone.
            row = conn.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            hashes = conn.execute("SELECT hash FROM memos WHERE run_id = ?", (run_id,))
            return _run.decode(row[0]), {h for (h,) in hashes}

        return await self._db.run(read)

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        stored = msgspec.structs.replace(run, version=run.version + 1)
        expires = self._run_expires_ms(run)

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
        return [_run.decode(r[0]) for r in rows]

    async def append_history(self, entry: HistoryEntry) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO history VALUES (?, ?, ?)",
            (entry.run_id, entry.entry_id, _enc.encode(entry)),
        )

    async def list_history(self, run_id: str) -> list[HistoryEntry]:
        rows = await self._db.execute(
            "SELECT body FROM history WHERE run_id = ? ORDER BY entry_id", (run_id,)
        )
        stored = [_entry.decode(r[0]) for r in rows]
        return with_last_transition(stored, await self.get_run(run_id))
