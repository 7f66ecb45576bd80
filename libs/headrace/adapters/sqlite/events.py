"""Events by receipt, with their listings, and the runs each event started.

Each row's `expires_ms` is the retention from its write, as Cassandra's TTL would have it."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from headrace.adapters.sqlite.database import Database
from headrace.core.clock import Clock
from headrace.messages.model import INTERNAL_PREFIX, Event, EventHead, EventListing, listing_of

_enc = msgspec.msgpack.Encoder()
_event = msgspec.msgpack.Decoder(Event)
T = TypeVar("T")
# What lists read: an event's listing, or its body where it has none (stored before listings).
_LISTING = "COALESCE(listing, body)"


class EventTables:
    def __init__(self, db: Database, clock: Clock, retention_s: int) -> None:
        self._db = db
        self._clock = clock
        self._retention_ms = retention_s * 1000

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
        return _event.decode(rows[0][0]) if rows else None

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
        return [msgspec.msgpack.decode(r[0], type=kind) for r in rows]

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
