"""Accepted events, the account's event stream, and the runs each event started.

The stream is bounded by time: events land in hourly buckets (by `received_ms`) of a feed, ''
for every name, 'name:<name>' per name, and 'external' for the names not reserved for the
engine's own events (`inngest/...`); `event_buckets` lists each feed's non-empty buckets, newest
first. A listing reads that short index (at most retention / one hour rows,
since everything carries the retention TTL) and then the newest buckets until it has enough:
one partition per bucket, never a scan. An hour of one account's events is the largest
partition; a busier account would want a finer bucket.

A feed row holds the event's listing (its payload only when small, messages/model.py
`EventListing`), so a list reads no large payload; a list of whole events reads each one's
record by id. Rows written before listings hold the whole event, which decodes as a listing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import msgspec
from cachetools import TTLCache

from headrace.adapters.cassandra.session import Cql
from headrace.messages.model import (
    INTERNAL_PREFIX,
    Event,
    EventHead,
    EventListing,
    listing_of,
)

BUCKET_MS = 3_600_000
# A bucket's index row is the same for every event of its hour: a process writes it again only
# this long after it last did. Its TTL (the retention and an hour) then outlives every event
# written into the bucket meanwhile, which carries the retention from its own write.
BUCKET_REWRITE_S = 600
_ALL = ""
_EXTERNAL = "external"

_enc = msgspec.msgpack.Encoder()
T = TypeVar("T")
_event = msgspec.msgpack.Decoder(Event)
_event_head = msgspec.msgpack.Decoder(EventHead)
_event_listing = msgspec.msgpack.Decoder(EventListing)


def _feed(name: str | None, internal: bool = True) -> str:
    if name is not None:
        return "name:" + name
    return _ALL if internal else _EXTERNAL


def _feeds(name: str) -> list[str]:
    """The feeds an event of this name is listed in."""
    feeds = [_ALL, _feed(name)]
    return feeds if name.startswith(INTERNAL_PREFIX) else [*feeds, _EXTERNAL]


class EventTables:
    def __init__(
        self, cql: Cql, retention_s: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._cql = cql
        self._event_ttl_s = retention_s
        # The bucket index outlives the last event it points to.
        self._event_bucket_ttl_s = retention_s + BUCKET_MS // 1000
        # The (account, feed, bucket) index rows this process wrote in the last BUCKET_REWRITE_S.
        self._bucket_rows_written: TTLCache[tuple[str, str, int], bool] = TTLCache(
            maxsize=4096, ttl=BUCKET_REWRITE_S, timer=monotonic
        )
        self._put_event = cql.prepare(
            "INSERT INTO {ks}.events (internal_id, receipt_id, body) VALUES (?, ?, ?) USING TTL ?"
        )
        self._get_event = cql.prepare("SELECT body FROM {ks}.events WHERE internal_id = ? LIMIT 1")
        self._put_feed = cql.prepare(
            "INSERT INTO {ks}.event_feed (account_id, feed, bucket, receipt_id, body) "
            "VALUES (?, ?, ?, ?, ?) USING TTL ?"
        )
        self._put_bucket = cql.prepare(
            "INSERT INTO {ks}.event_buckets (account_id, feed, bucket) VALUES (?, ?, ?) USING TTL ?"
        )
        self._buckets = cql.prepare(
            "SELECT bucket FROM {ks}.event_buckets WHERE account_id = ? AND feed = ?"
        )
        self._read_feed = cql.prepare(
            "SELECT body FROM {ks}.event_feed WHERE account_id = ? AND feed = ? AND bucket = ? "
            "LIMIT ?"
        )
        self._link_run = cql.prepare(
            "INSERT INTO {ks}.event_runs (event_id, run_id) VALUES (?, ?) USING TTL ?"
        )
        self._linked_runs = cql.prepare("SELECT run_id FROM {ks}.event_runs WHERE event_id = ?")

    async def put_event(self, event: Event) -> None:
        # Events made by headrace itself have no receipt; their internal id is unique. Every
        # write below is keyed by the receipt, so writing the event again changes nothing.
        receipt = event.receipt_id or event.internal_id
        body = _enc.encode(event)
        listing = _enc.encode(listing_of(event, len(body)))
        bucket = event.received_ms // BUCKET_MS
        account, ttl = event.account_id, self._event_ttl_s
        writes = [self._cql.write(self._put_event, (event.internal_id, receipt, body, ttl))]
        feeds = _feeds(event.name)
        unindexed = [
            (account, feed, bucket)
            for feed in feeds
            if (account, feed, bucket) not in self._bucket_rows_written
        ]
        for feed in feeds:
            writes.append(
                self._cql.write(self._put_feed, (account, feed, bucket, receipt, listing, ttl))
            )
        for row in unindexed:
            writes.append(self._cql.write(self._put_bucket, (*row, self._event_bucket_ttl_s)))
        await asyncio.gather(*writes)
        for row in unindexed:
            self._bucket_rows_written[row] = True

    async def get_event(self, internal_id: str) -> Event | None:
        rows = await self._cql.rows(self._get_event, (internal_id,))
        return _event.decode(rows[0][0]) if rows else None

    async def list_events(
        self, account_id: str, *, name: str | None = None, limit: int = 50, internal: bool = True
    ) -> list[Event]:
        listed = await self._list_events(_event_head, account_id, name, limit, internal)
        found = await asyncio.gather(*(self.get_event(head.internal_id) for head in listed))
        # One that expired between the two reads is left out.
        return [event for event in found if event is not None]

    async def list_event_heads(
        self, account_id: str, *, name: str | None = None, limit: int = 50
    ) -> list[EventHead]:
        return await self._list_events(_event_head, account_id, name, limit, True)

    async def list_event_listings(
        self, account_id: str, *, name: str | None = None, limit: int = 50, internal: bool = True
    ) -> list[EventListing]:
        return await self._list_events(_event_listing, account_id, name, limit, internal)

    async def _list_events(
        self,
        decoder: msgspec.msgpack.Decoder[T],
        account_id: str,
        name: str | None,
        limit: int,
        internal: bool,
    ) -> list[T]:
        if name is not None and not internal and name.startswith(INTERNAL_PREFIX):
            return []
        feed = _feed(name, internal)
        events: list[T] = []
        for (bucket,) in await self._cql.rows(self._buckets, (account_id, feed)):
            if len(events) >= limit:
                break
            rows = await self._cql.rows(
                self._read_feed, (account_id, feed, bucket, limit - len(events))
            )
            events += [decoder.decode(body) for (body,) in rows]
        return events

    async def link_run(self, event_id: str, run_id: str) -> None:
        await self._cql.write(self._link_run, (event_id, run_id, self._event_ttl_s))

    async def runs_for_event(self, event_id: str) -> list[str]:
        return [run_id for (run_id,) in await self._cql.rows(self._linked_runs, (event_id,))]
