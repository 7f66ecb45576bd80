"""Runs, their memos and their history.

Retention: while a run is open its rows carry a long safety TTL (the retention plus the longest
a run may stay open), so nothing leaks for ever and nothing a live run needs expires. Once the
run has ended, `retain_run` writes its memos, its history and its listing rows again with the
retention TTL, which from then on counts from the end. The last transition's history is
appended after `retain_run` (executor/outbox.py), so `retain_run` writes those entries too,
stamped a day ahead: the later append of the same immutable entry, with the long TTL, loses to
them. (A history entry appended again later than that, by a repeated record, keeps the long
TTL.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from cassandra.query import PreparedStatement

from headrace.adapters.cassandra.session import Bound, Cql
from headrace.core.errors import Conflict, TransientError
from headrace.core.retention import MAX_OPEN_S
from headrace.messages.state import ENDED, HistoryEntry, RunState, with_last_transition

# When an ended run gets its retention TTL, its rows are rewritten in batches of about this
# size: well below Cassandra's largest mutation (half a commit log segment, 16 MiB by default).
_REWRITE_BYTES = 1 << 20
# How far ahead of the clock `retain_run` stamps the entries the outbox appends after it.
_AHEAD_US = 86_400 * 1_000_000
# A run read while it is being written is read again, this many times at most.
_SNAPSHOT_ROUNDS = 5

_enc = msgspec.msgpack.Encoder()
_run = msgspec.msgpack.Decoder(RunState)
_entry = msgspec.msgpack.Decoder(HistoryEntry)


class RunTables:
    def __init__(self, cql: Cql, retention_s: int) -> None:
        self._cql = cql
        self._retention_s = retention_s
        self._open_ttl_s = retention_s + MAX_OPEN_S
        # The run lives in the static columns of its partition, each memo in a row of it; its
        # version is a static column of its own, so that writes can be conditional on it.
        self._create_run = cql.prepare(
            "INSERT INTO {ks}.runs (run_id, body, version) VALUES (?, ?, 1) IF NOT EXISTS "
            "USING TTL ?"
        )
        self._update_run = cql.prepare(
            "UPDATE {ks}.runs USING TTL ? SET body = ?, version = ? WHERE run_id = ? IF version = ?"
        )
        # A run written before versions existed has none: it is at version 0.
        self._update_unversioned_run = cql.prepare(
            "UPDATE {ks}.runs USING TTL ? SET body = ?, version = 1 WHERE run_id = ? "
            "IF version = null"
        )
        self._get_run = cql.prepare("SELECT body FROM {ks}.runs WHERE run_id = ? LIMIT 1")
        self._put_memo = cql.prepare(
            "INSERT INTO {ks}.runs (run_id, hash, memo) VALUES (?, ?, ?) USING TTL ?"
        )
        self._memos = cql.prepare("SELECT hash, memo FROM {ks}.runs WHERE run_id = ?")
        # A snapshot of a run is its body and its memo rows at one version: the rows carry the
        # small static version, not the body, which a query of both would repeat in every row
        # (the body holds the stack and the last transition's history, outputs included).
        self._versioned_memos = cql.prepare(
            "SELECT version, hash, memo FROM {ks}.runs WHERE run_id = ?"
        )
        self._versioned_memo_keys = cql.prepare(
            "SELECT version, hash FROM {ks}.runs WHERE run_id = ?"
        )
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
        self._put_entry_ahead = cql.prepare(
            "INSERT INTO {ks}.history (run_id, entry_id, body) VALUES (?, ?, ?) "
            "USING TTL ? AND TIMESTAMP ?"
        )

    def _ttl(self, run: RunState) -> int:
        return self._retention_s if run.status in ENDED else self._open_ttl_s

    async def create_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> bool:
        stored = msgspec.structs.replace(run, version=1)
        ttl = self._ttl(run)
        batch: list[Bound] = [(self._create_run, (run.run_id, _enc.encode(stored), ttl))]
        batch += self._memo_rows(run.run_id, memos, ttl)
        created, existing = await self._cql.applied_batch(batch)
        if created:
            run.version = 1
        # Listed even when the run already existed: a create retried after a crash between the
        # two writes must still list it; with the TTL of the stored run, not of this copy.
        body = existing.get("body")
        listed = stored if created or body is None else _run.decode(body)
        await self._list(listed, self._ttl(listed))
        return created

    async def get_run(self, run_id: str) -> RunState | None:
        rows = await self._cql.rows(self._get_run, (run_id,))
        return _run.decode(rows[0][0]) if rows and rows[0][0] is not None else None

    async def get_run_and_memos(self, run_id: str) -> tuple[RunState, dict[str, bytes]] | None:
        found = await self._snapshot(self._versioned_memos, run_id)
        if found is None:
            return None
        run, rows = found
        return run, {h: memo for _, h, memo in rows if h is not None}

    async def get_run_and_memo_keys(self, run_id: str) -> tuple[RunState, set[str]] | None:
        found = await self._snapshot(self._versioned_memo_keys, run_id)
        if found is None:
            return None
        run, rows = found
        return run, {h for _, h in rows if h is not None}

    async def _snapshot(
        self, rows_query: PreparedStatement, run_id: str
    ) -> tuple[RunState, list[tuple[Any, ...]]] | None:
        """The run and its rows (`rows_query`, whose first column is the version) as of one
        write: read apart, and again until both are at the same version. Every write that adds
        memo rows changes the version with them, in one conditional batch (`save_run`), so rows
        and body at one version are one write's state."""
        for _ in range(_SNAPSHOT_ROUNDS):
            bodies, rows = await asyncio.gather(
                self._cql.rows(self._get_run, (run_id,)), self._cql.rows(rows_query, (run_id,))
            )
            if not bodies or bodies[0][0] is None:
                return None
            run = _run.decode(bodies[0][0])
            # A run written before versions existed has none: it is at version 0.
            if rows and (rows[0][0] or 0) == run.version:
                # A partition holding only the run yields one row with no clustering key.
                return run, rows
        raise TransientError(f"run {run_id} kept changing while it was read")

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        ttl = self._ttl(run)
        stored = msgspec.structs.replace(run, version=run.version + 1)
        body = _enc.encode(stored)
        if run.version == 0:
            update: Bound = (self._update_unversioned_run, (ttl, body, run.run_id))
        else:
            update = (self._update_run, (ttl, body, stored.version, run.run_id, run.version))
        # A conditional batch on one partition: the run and its new memos are written together,
        # and only while the run is still at the version it was read at.
        saved, found = await self._cql.applied_batch(
            [update, *self._memo_rows(run.run_id, memos, ttl)]
        )
        if not saved:
            raise Conflict(
                f"run {run.run_id} was written since version {run.version} "
                f"(the store holds {found.get('version')})"
            )
        run.version = stored.version

    def _memo_rows(self, run_id: str, memos: dict[str, bytes] | None, ttl: int) -> list[Bound]:
        return [(self._put_memo, (run_id, h, value, ttl)) for h, value in (memos or {}).items()]

    async def retain_run(self, run: RunState) -> None:
        """Give an ended run's rows the retention TTL (rewriting is the only way)."""
        ttl = self._retention_s
        memos = [
            (self._put_memo, (run.run_id, step_hash, value, ttl))
            for step_hash, value in await self._cql.rows(self._memos, (run.run_id,))
            if step_hash is not None
        ]
        entries: list[Bound] = [
            (self._put_entry, (run.run_id, entry_id, body, ttl))
            for entry_id, body in await self._cql.rows(self._history, (run.run_id,))
        ]
        ahead = self._cql.timestamp() + _AHEAD_US
        entries += [
            (self._put_entry_ahead, (run.run_id, e.entry_id, _enc.encode(e), ttl, ahead))
            for e in run.outbox_history
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
        rows, run = await asyncio.gather(
            self._cql.rows(self._history, (run_id,)), self.get_run(run_id)
        )
        return with_last_transition([_entry.decode(body) for _, body in rows], run)


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
