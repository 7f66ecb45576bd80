"""Pauses (by id, by partition, by run) and event batches (by partition, by key). Deleting a
pause says whether this call deleted it, so of two callers (an event and a timeout) exactly one
wins."""

from __future__ import annotations

from typing import Any

import msgspec

from headrace.adapters.sqlite.database import Database
from headrace.messages.model import Batch, Pause

_enc = msgspec.msgpack.Encoder()
_pause = msgspec.msgpack.Decoder(Pause)
_batch = msgspec.msgpack.Decoder(Batch)


class PauseTables:
    def __init__(self, db: Database) -> None:
        self._db = db

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
        return _pause.decode(rows[0][0]) if rows else None

    async def pauses_for_partition(self, partition: int) -> list[Pause]:
        rows = await self._db.execute(
            "SELECT body FROM pauses WHERE partition = ? ORDER BY pause_id", (partition,)
        )
        return [_pause.decode(r[0]) for r in rows]

    async def pauses_for_run(self, run_id: str) -> list[Pause]:
        rows = await self._db.execute("SELECT body FROM pauses WHERE run_id = ?", (run_id,))
        return [_pause.decode(r[0]) for r in rows]


class BatchTables:
    def __init__(self, db: Database) -> None:
        self._db = db

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
        return [_batch.decode(r[0]) for r in rows]
