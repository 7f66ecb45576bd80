"""Pauses (by id, by partition, by run) and event batches (by partition, by key).

A pause's row by id decides who deletes it: `DELETE ... IF EXISTS`, a lightweight transaction,
so of two callers (an event and a timeout) exactly one wins. Writing a pause or a batch touches
several partitions, so it is a logged batch: all of its rows or none, even after a crash.
"""

from __future__ import annotations

import asyncio

import msgspec

from headrace.adapters.cassandra.session import Cql
from headrace.messages.model import Batch, Pause

_enc = msgspec.msgpack.Encoder()
_pause = msgspec.msgpack.Decoder(Pause)
_batch = msgspec.msgpack.Decoder(Batch)


class PauseTables:
    def __init__(self, cql: Cql) -> None:
        self._cql = cql
        self._pause_put = cql.prepare(
            "INSERT INTO {ks}.pauses (pause_id, partition, run_id, body) VALUES (?, ?, ?, ?)"
        )
        self._pause_put_in_partition = cql.prepare(
            "INSERT INTO {ks}.pauses_by_partition (partition, pause_id, body) VALUES (?, ?, ?)"
        )
        self._pause_put_in_run = cql.prepare(
            "INSERT INTO {ks}.pauses_by_run (run_id, pause_id, body) VALUES (?, ?, ?)"
        )
        self._pause_get = cql.prepare("SELECT body FROM {ks}.pauses WHERE pause_id = ?")
        self._pause_where = cql.prepare(
            "SELECT partition, run_id FROM {ks}.pauses WHERE pause_id = ?"
        )
        self._pause_delete = cql.prepare("DELETE FROM {ks}.pauses WHERE pause_id = ? IF EXISTS")
        self._pause_delete_in_partition = cql.prepare(
            "DELETE FROM {ks}.pauses_by_partition WHERE partition = ? AND pause_id = ?"
        )
        self._pause_delete_in_run = cql.prepare(
            "DELETE FROM {ks}.pauses_by_run WHERE run_id = ? AND pause_id = ?"
        )
        self._pause_in_partition = cql.prepare(
            "SELECT body FROM {ks}.pauses_by_partition WHERE partition = ?"
        )
        self._pause_in_run = cql.prepare("SELECT body FROM {ks}.pauses_by_run WHERE run_id = ?")

    async def put_pause(self, pause: Pause, partition: int) -> None:
        body = _enc.encode(pause)
        await self._cql.batch(
            [
                (self._pause_put, (pause.pause_id, partition, pause.run_id, body)),
                (self._pause_put_in_partition, (partition, pause.pause_id, body)),
                (self._pause_put_in_run, (pause.run_id, pause.pause_id, body)),
            ],
            logged=True,
        )

    async def delete_pause(self, pause_id: str) -> bool:
        found = await self._cql.rows(self._pause_where, (pause_id,))
        if not found:
            return False
        partition, run_id = found[0]
        # The listings first, the row by id last: a delete interrupted in between leaves the
        # row by id, so repeating it finds the pause and finishes.
        await asyncio.gather(
            self._cql.write(self._pause_delete_in_partition, (partition, pause_id)),
            self._cql.write(self._pause_delete_in_run, (run_id, pause_id)),
        )
        deleted, _ = await self._cql.applied(self._pause_delete, (pause_id,))
        return deleted

    async def get_pause(self, pause_id: str) -> Pause | None:
        rows = await self._cql.rows(self._pause_get, (pause_id,))
        return _pause.decode(rows[0][0]) if rows else None

    async def pauses_for_partition(self, partition: int) -> list[Pause]:
        rows = await self._cql.rows(self._pause_in_partition, (partition,))
        return [_pause.decode(body) for (body,) in rows]

    async def pauses_for_run(self, run_id: str) -> list[Pause]:
        return [
            _pause.decode(body) for (body,) in await self._cql.rows(self._pause_in_run, (run_id,))
        ]


class BatchTables:
    def __init__(self, cql: Cql) -> None:
        self._cql = cql
        self._batch_put = cql.prepare(
            "INSERT INTO {ks}.batches (partition, batch_key, body) VALUES (?, ?, ?)"
        )
        self._batch_put_key = cql.prepare(
            "INSERT INTO {ks}.batch_keys (batch_key, partition) VALUES (?, ?)"
        )
        self._batch_where = cql.prepare("SELECT partition FROM {ks}.batch_keys WHERE batch_key = ?")
        self._batch_delete = cql.prepare(
            "DELETE FROM {ks}.batches WHERE partition = ? AND batch_key = ?"
        )
        self._batch_delete_key = cql.prepare("DELETE FROM {ks}.batch_keys WHERE batch_key = ?")
        self._batch_in_partition = cql.prepare("SELECT body FROM {ks}.batches WHERE partition = ?")

    async def put_batch(self, batch: Batch, partition: int) -> None:
        # Two writes, not a logged batch: a batch of events passes Cassandra's multi-partition
        # batch limit (50 KiB by default). The key goes first, so `delete_batch` always finds
        # the body; a put interrupted in between is repeated by the runner's next add or flush.
        await self._cql.write(self._batch_put_key, (batch.batch_key, partition))
        await self._cql.write(self._batch_put, (partition, batch.batch_key, _enc.encode(batch)))

    async def delete_batch(self, batch_key: str) -> None:
        found = await self._cql.rows(self._batch_where, (batch_key,))
        if not found:
            return
        # The key goes last, so that a delete interrupted half-way can be repeated.
        await self._cql.write(self._batch_delete, (found[0][0], batch_key))
        await self._cql.write(self._batch_delete_key, (batch_key,))

    async def batches_for_partition(self, partition: int) -> list[Batch]:
        rows = await self._cql.rows(self._batch_in_partition, (partition,))
        return [_batch.decode(body) for (body,) in rows]
