"""Runs, their memos and their history.

Retention: while a run is open its rows carry a long safety TTL (the retention plus the longest
a run may stay open), so nothing leaks for ever and nothing a live run needs expires. When the
run ends, `save_run` writes the run, its memos, its history and its listing rows again with the
retention TTL, which from then on counts from the end. (A history entry appended again after
the end, by a repeated record, keeps the long TTL.)
"""

from __future__ import annotations

import asyncio

import msgspec

from headrace.adapters.cassandra.session import Bound, Cql
from headrace.messages.state import ENDED, HistoryEntry, RunState

# Inngest lets a function sleep for up to a year; a run open longer than this loses its rows.
MAX_OPEN_S = 366 * 86_400

# When an ended run gets its retention TTL, its rows are rewritten in batches of about this
# size: well below Cassandra's largest mutation (half a commit log segment, 16 MiB by default).
_REWRITE_BYTES = 1 << 20

_enc = msgspec.msgpack.Encoder()
_run = msgspec.msgpack.Decoder(RunState)
_entry = msgspec.msgpack.Decoder(HistoryEntry)


class RunTables:
    def __init__(self, cql: Cql, retention_s: int) -> None:
        self._cql = cql
        self._retention_s = retention_s
        self._open_ttl_s = retention_s + MAX_OPEN_S
        # The run lives in the static columns of its partition, each memo in a row of it.
        self._create_run = cql.prepare(
            "INSERT INTO {ks}.runs (run_id, body) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
        )
        self._update_run = cql.prepare("UPDATE {ks}.runs USING TTL ? SET body = ? WHERE run_id = ?")
        self._get_run = cql.prepare("SELECT body FROM {ks}.runs WHERE run_id = ? LIMIT 1")
        self._put_memo = cql.prepare(
            "INSERT INTO {ks}.runs (run_id, hash, memo) VALUES (?, ?, ?) USING TTL ?"
        )
        self._memo_hashes = cql.prepare("SELECT hash FROM {ks}.runs WHERE run_id = ? AND hash IN ?")
        self._memos = cql.prepare("SELECT hash, memo FROM {ks}.runs WHERE run_id = ?")
        self._list_by_account = cql.prepare(
            "INSERT INTO {ks}.runs_by_account (account_id, run_id) VALUES (?, ?) USING TTL ?"
        )
        self._list_by_function = cql.prepare(
            "INSERT INTO {ks}.runs_by_function (account_id, fn_id, run_id) VALUES (?, ?, ?) "
            "USING TTL ?"
        )
        self._runs_of_account = cql.prepare(
            "SELECT run_id FROM {ks}.runs_by_account WHERE account_id = ? LIMIT ?"
        )
        self._runs_of_function = cql.prepare(
            "SELECT run_id FROM {ks}.runs_by_function WHERE account_id = ? AND fn_id = ? LIMIT ?"
        )
        self._put_entry = cql.prepare(
            "INSERT INTO {ks}.history (run_id, entry_id, body) VALUES (?, ?, ?) USING TTL ?"
        )
        self._history = cql.prepare("SELECT entry_id, body FROM {ks}.history WHERE run_id = ?")

    def _ttl(self, run: RunState) -> int:
        return self._retention_s if run.status in ENDED else self._open_ttl_s

    async def create_run(self, run: RunState) -> bool:
        created, existing = await self._cql.applied(
            self._create_run,
            (run.run_id, _enc.encode(run), self._ttl(run)),
        )
        # Listed even when the run already existed: a create retried after a crash between the
        # two writes must still list it; with the TTL of the stored run, not of this copy.
        body = existing.get("body")
        stored = run if created or body is None else _run.decode(body)
        await self._list(stored, self._ttl(stored))
        return created

    async def get_run(self, run_id: str) -> RunState | None:
        rows = await self._cql.rows(self._get_run, (run_id,))
        return _run.decode(rows[0][0]) if rows and rows[0][0] is not None else None

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        ttl = self._ttl(run)
        new = dict(memos or {})
        if new:
            # A memo once written is never replaced. Reading first (rather than a lightweight
            # transaction per memo) is safe because a run has one writer at a time: the owner
            # of its partition, whose saves of the run itself are last-write-wins anyway.
            for (step_hash,) in await self._cql.rows(self._memo_hashes, (run.run_id, list(new))):
                new.pop(step_hash, None)
        batch: list[Bound] = [(self._update_run, (ttl, _enc.encode(run), run.run_id))]
        batch += [(self._put_memo, (run.run_id, h, value, ttl)) for h, value in new.items()]
        # One partition: a single mutation, so the run and its memos are written together.
        await self._cql.batch(batch, logged=False)
        if run.status in ENDED:
            await self._retain(run, written=set(new))

    async def _retain(self, run: RunState, written: set[str]) -> None:
        """Give an ended run's older rows the retention TTL (rewriting is the only way)."""
        ttl = self._retention_s
        memos = [
            (self._put_memo, (run.run_id, step_hash, value, ttl))
            for step_hash, value in await self._cql.rows(self._memos, (run.run_id,))
            if step_hash is not None and step_hash not in written
        ]
        entries = [
            (self._put_entry, (run.run_id, entry_id, body, ttl))
            for entry_id, body in await self._cql.rows(self._history, (run.run_id,))
        ]
        for rows in (memos, entries):
            for chunk in _by_size(rows):
                await self._cql.batch(chunk, logged=False)
        await self._list(run, ttl)

    async def _list(self, run: RunState, ttl: int) -> None:
        await asyncio.gather(
            self._cql.write(self._list_by_account, (run.account_id, run.run_id, ttl)),
            self._cql.write(self._list_by_function, (run.account_id, run.fn_id, run.run_id, ttl)),
        )

    async def get_memos(self, run_id: str) -> dict[str, bytes]:
        rows = await self._cql.rows(self._memos, (run_id,))
        # A partition holding only the run yields one row with no clustering key.
        return {step_hash: memo for step_hash, memo in rows if step_hash is not None}

    async def list_runs(
        self, account_id: str, *, limit: int = 50, fn_id: str | None = None
    ) -> list[RunState]:
        if limit <= 0:
            return []
        if fn_id is None:
            ids = await self._cql.rows(self._runs_of_account, (account_id, limit))
        else:
            ids = await self._cql.rows(self._runs_of_function, (account_id, fn_id, limit))
        found = await self._cql.rows_each(self._get_run, [(run_id,) for (run_id,) in ids])
        # A listing row may outlive its run by a moment (both expire by TTL): skip it.
        return [_run.decode(rows[0][0]) for rows in found if rows and rows[0][0] is not None]

    async def append_history(self, entry: HistoryEntry) -> None:
        # Idempotent by entry id: the same entry written again is the same row.
        await self._cql.write(
            self._put_entry, (entry.run_id, entry.entry_id, _enc.encode(entry), self._open_ttl_s)
        )

    async def list_history(self, run_id: str) -> list[HistoryEntry]:
        return [_entry.decode(body) for _, body in await self._cql.rows(self._history, (run_id,))]


def _by_size(rows: list[Bound]) -> list[list[Bound]]:
    """Consecutive groups of about `_REWRITE_BYTES` (the blob is each row's third value)."""
    chunks: list[list[Bound]] = [[]]
    size = 0
    for row in rows:
        blob_size = len(row[1][2])
        if chunks[-1] and size + blob_size > _REWRITE_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += blob_size
    return [chunk for chunk in chunks if chunk]
