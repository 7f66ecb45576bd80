"""Flow-control state by (partition, kind), read whole by the partition's new owner."""

from __future__ import annotations

from headrace.adapters.sqlite.database import Database


class FlowTables:
    def __init__(self, db: Database) -> None:
        self._db = db

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
