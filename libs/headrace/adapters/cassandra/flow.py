"""Flow-control state: one Cassandra partition per (Kafka partition, kind), read whole by the
Kafka partition's new owner."""

from __future__ import annotations

from headrace.adapters.cassandra.session import Cql


class FlowTables:
    def __init__(self, cql: Cql) -> None:
        self._cql = cql
        self._flow_put = cql.prepare(
            "INSERT INTO {ks}.flow_state (partition, kind, entry_id, body) VALUES (?, ?, ?, ?)"
        )
        self._flow_delete = cql.prepare(
            "DELETE FROM {ks}.flow_state WHERE partition = ? AND kind = ? AND entry_id = ?"
        )
        self._flow_entries = cql.prepare(
            "SELECT entry_id, body FROM {ks}.flow_state WHERE partition = ? AND kind = ?"
        )

    async def put_flow(self, partition: int, kind: str, entry_id: str, body: bytes) -> None:
        await self._cql.write(self._flow_put, (partition, kind, entry_id, body))

    async def delete_flow(self, partition: int, kind: str, entry_id: str) -> None:
        await self._cql.write(self._flow_delete, (partition, kind, entry_id))

    async def flow_entries(self, partition: int, kind: str) -> list[tuple[str, bytes]]:
        rows = await self._cql.rows(self._flow_entries, (partition, kind))
        return [(entry_id, body) for entry_id, body in rows]
