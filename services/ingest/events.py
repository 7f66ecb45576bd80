"""Accepting events: one validation, id assignment and publishing path for every source."""

from __future__ import annotations

from typing import Any

import msgspec

from headrace.core.clock import Clock
from headrace.core.errors import InputError
from headrace.core.ids import new_ulid, seeded_event_ids
from headrace.core.jsonutil import check_storable, loads
from headrace.messages.model import Event
from headrace.messages.records import EVENTS_CODEC, EventAccepted
from headrace.messages.topics import Topics
from headrace.ports.log import Log, Outgoing

MAX_EVENT_BYTES = 3 * 1024 * 1024
MAX_EVENTS = 5000
# The body as a whole: enough for the largest valid request, refused before it is parsed.
MAX_REQUEST_BYTES = 256 * 1024 * 1024
# The last millisecond of year 9999: every later time breaks dates on the pages that show it.
MAX_TS_MS = 253_402_300_799_999
_encoder = msgspec.json.Encoder()


class Rejected(InputError):
    """Events refused, with a short `reason` for metrics: body_too_large, invalid_json,
    no_events, too_many_events, invalid_event, event_too_large."""

    def __init__(self, reason: str, message: str, *, status: int = 400) -> None:
        super().__init__(message, status=status)
        self.reason = reason


class EventIngest:
    def __init__(
        self,
        log_port: Log,
        topics: Topics,
        clock: Clock,
        *,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_events: int = MAX_EVENTS,
    ) -> None:
        self._log = log_port
        self._topics = topics
        self._clock = clock
        self._max_event_bytes = max_event_bytes
        self._max_events = max_events
        self._max_request_bytes = MAX_REQUEST_BYTES

    def parse(self, body: bytes) -> tuple[list[dict[str, Any]], Rejected | None]:
        """Read a request body (one event or an array) and check its events in order.

        As Inngest's Event API does, the events before the first invalid one are valid and are
        accepted; the first problem comes back with them (None when everything is valid).
        """
        if len(body) > self._max_request_bytes:
            return [], Rejected(
                "body_too_large",
                f"the body is {len(body)} bytes, over the limit of {self._max_request_bytes} bytes",
                status=413,
            )
        try:
            raw = loads(body)
        except msgspec.DecodeError as err:
            return [], Rejected("invalid_json", f"the body is not valid JSON: {err}")
        # No event of a body within the per-event limit can be over it: none needs measuring.
        small = len(body) <= self._max_event_bytes
        return self.valid_prefix(raw if isinstance(raw, list) else [raw], measure=not small)

    def valid_prefix(
        self, items: list[Any], *, measure: bool = True
    ) -> tuple[list[dict[str, Any]], Rejected | None]:
        if not items:
            return [], Rejected(
                "no_events", "no events: send one event object or a non-empty array"
            )
        if len(items) > self._max_events:
            return [], Rejected(
                "too_many_events",
                f"too many events: {len(items)} in one request, the limit is {self._max_events}",
            )
        for index, item in enumerate(items):
            try:
                self._check(index, item, measure)
            except Rejected as err:
                return items[:index], err
        return items, None

    def _check(self, index: int, item: Any, measure: bool) -> None:
        where = f"event {index}"
        if not isinstance(item, dict):
            raise Rejected("invalid_event", f"{where}: an event must be a JSON object")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise Rejected("invalid_event", f"{where}: the event has no name")
        # Messages name the event, not all of a name that may be megabytes long.
        where += f" ({name[:100]}...)" if len(name) > 100 else f" ({name})"
        if item.get("data") is not None and not isinstance(item["data"], dict):
            raise Rejected("invalid_event", f"{where}: data must be an object")
        if item.get("user") is not None and not isinstance(item["user"], dict):
            raise Rejected("invalid_event", f"{where}: user must be an object")
        if item.get("id") is not None and not isinstance(item["id"], str):
            raise Rejected("invalid_event", f"{where}: id must be a string")
        ts = item.get("ts")
        if ts is not None and (
            isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 <= ts <= MAX_TS_MS
        ):
            raise Rejected(
                "invalid_event",
                f"{where}: ts must be a number of milliseconds from 0 to {MAX_TS_MS}",
            )
        if not measure:
            return
        size = len(_encoder.encode(item))
        if size > self._max_event_bytes:
            raise Rejected(
                "event_too_large",
                f"{where} is {size} bytes, over the limit of {self._max_event_bytes} "
                "bytes per event",
            )

    async def accept(
        self,
        account_id: str,
        items: list[dict[str, Any]],
        seed: str | None = None,
        *,
        ids: list[str] | None = None,
    ) -> list[str]:
        """Assign ids (from the SDK's `seed`, or given: the same source record always gives the
        same ids, so a repeat is deduplicated) and publish; return the internal ids in order.

        No order between the events of one request is promised, as with separate requests.
        """
        ids = ids if ids is not None else seeded_event_ids(seed, len(items), self._clock.now_ms())
        await self.publish(self.records(account_id, items, ids))
        return ids

    def records(
        self, account_id: str, items: list[dict[str, Any]], ids: list[str]
    ) -> list[Outgoing]:
        """The `events` records of valid events, with their internal ids."""
        now = self._clock.now_ms()
        records = []
        for internal_id, item in zip(ids, items, strict=True):
            payload = {**item, "data": item.get("data") or {}}
            payload["id"] = item.get("id") or internal_id
            payload["ts"] = int(item.get("ts") or now)
            event = Event(
                internal_id=internal_id,
                account_id=account_id,
                name=str(item["name"]),
                payload=payload,
                received_ms=now,
                receipt_id=new_ulid(now),
            )
            records.append(Outgoing(account_id, EVENTS_CODEC.encode(EventAccepted(event=event))))
        return records

    async def publish(self, records: list[Outgoing]) -> None:
        """Publish `events` records (from `records`), durable when this returns."""
        await self._log.publish_many(self._topics.events, records)

    async def send(self, account_id: str, items: list[dict[str, Any]]) -> list[str]:
        """Accept events from inside headrace (the dashboard, invoke): all valid, or none."""
        valid, problem = self.valid_prefix(items)
        if problem is not None:
            raise problem
        # Their data did not come through `loads` (a GraphQL literal, a rerun's copy).
        try:
            check_storable(valid)
        except msgspec.DecodeError as err:
            raise Rejected("invalid_event", f"the event cannot be stored: {err}") from None
        return await self.accept(account_id, valid)
