"""Idempotency and dedupe keys: claimed with lightweight transactions, collected by TTL.

Expiry is decided by the caller's clock (`now_ms`, stored `expires_ms`), as the port says; the
TTL only makes expired keys vanish. A key that has expired by the caller's clock but not yet
by its TTL is taken over with a compare-and-set on the value found, so two claimers racing for
it cannot both win.
"""

from __future__ import annotations

import math

from headrace.adapters.cassandra.session import CassandraUnavailable, Cql

# Cassandra counts a TTL in whole seconds from the second of the write, so a TTL of n seconds
# can end up to a second early: one more second keeps a key at least as long as asked.
_TTL_SLACK_S = 1
_MAX_TTL_S = 20 * 365 * 86_400  # Cassandra's limit

# Each round loses only to another claimer's success, so a few rounds always settle it.
_ROUNDS = 8


def ttl_seconds(ttl_ms: int) -> int:
    return min(max(math.ceil(ttl_ms / 1000), 1) + _TTL_SLACK_S, _MAX_TTL_S)


class KeyTables:
    def __init__(self, cql: Cql) -> None:
        self._cql = cql
        self._claim_insert = cql.prepare(
            "INSERT INTO {ks}.claims (claim_key, value, expires_ms) VALUES (?, ?, ?) "
            "IF NOT EXISTS USING TTL ?"
        )
        self._claim_take_over = cql.prepare(
            "UPDATE {ks}.claims USING TTL ? SET value = ?, expires_ms = ? WHERE claim_key = ? "
            "IF value = ? AND expires_ms = ?"
        )
        self._holder = cql.prepare("SELECT value, expires_ms FROM {ks}.claims WHERE claim_key = ?")
        self._swap = cql.prepare(
            "UPDATE {ks}.claims USING TTL ? SET value = ?, expires_ms = ? WHERE claim_key = ? "
            "IF value = ?"
        )

    async def claim(self, key: str, value: str, ttl_ms: int, now_ms: int) -> str | None:
        expires_ms, ttl = now_ms + ttl_ms, ttl_seconds(ttl_ms)
        claimed, found = await self._cql.applied(self._claim_insert, (key, value, expires_ms, ttl))
        for _ in range(_ROUNDS):
            if claimed:
                return None
            if found.get("value") is None:
                # Gone since (its TTL ran out): insert again.
                claimed, found = await self._cql.applied(
                    self._claim_insert, (key, value, expires_ms, ttl)
                )
            elif found["expires_ms"] > now_ms:
                return str(found["value"])
            else:
                claimed, found = await self._cql.applied(
                    self._claim_take_over,
                    (ttl, value, expires_ms, key, found["value"], found["expires_ms"]),
                )
        if claimed:
            return None
        raise CassandraUnavailable(f"claiming {key!r}: no outcome after {_ROUNDS} rounds")

    async def swap(self, key: str, expected: str, value: str, ttl_ms: int, now_ms: int) -> bool:
        applied, _ = await self._cql.applied(
            self._swap, (ttl_seconds(ttl_ms), value, now_ms + ttl_ms, key, expected)
        )
        return applied

    async def holder(self, key: str, now_ms: int) -> str | None:
        rows = await self._cql.rows(self._holder, (key,))
        if not rows or rows[0][1] <= now_ms:
            return None
        return str(rows[0][0])
