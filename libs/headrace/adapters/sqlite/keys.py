"""Idempotency and dedupe keys. Expiry is decided by the caller's clock (`now_ms`, stored
`expires_ms`), as the port says. A claim's read and write run together on the database's one
worker thread (database.py), so two claimers cannot both win. SqliteStores.sweep deletes the
keys past their expiry."""

from __future__ import annotations

from typing import Any

from headrace.adapters.sqlite.database import Database


class KeyTables:
    def __init__(self, db: Database) -> None:
        self._db = db

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
