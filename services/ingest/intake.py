"""Events that producers publish straight to Kafka, on the intake topics.

A record's value is what the Event API takes as a body: one event as JSON, or an array of them.
Its `event-key` header carries the event key, as the Event API's URL does, and names the
account. Producers choose their own record keys; nothing here reads them.

Each record goes through the Event API's own path (`EventIngest`: validation, limits, ids,
publishing to `events` keyed by the account) and is all or nothing: a record with any invalid
event is set aside whole, in the dead-letter topic, with its bytes untouched and the reason in a
header (the consume loop does that for the `Rejected` errors returned here), and counted by
reason on `/metrics`. Records are handled in batches, their events published together. The
consume loop commits a record only after its events are acknowledged; a record read again after
a crash gets the same event ids (derived from its topic, partition, offset and timestamp), and
the runner starts no run twice for an event id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from headrace.services.ingest.events import EventIngest, Rejected

from headrace.core.clock import Clock
from headrace.core.ids import derived_ulid
from headrace.obs.metrics import intake_accepted, intake_rejected
from headrace.ports.log import LogRecord
from headrace.protocol.accounts import AccountKeys

EVENT_KEY_HEADER = "event-key"


class Intake:
    def __init__(self, ingest: EventIngest, keys: AccountKeys, clock: Clock) -> None:
        self._ingest = ingest
        self._keys = keys
        self._clock = clock

    async def handle(self, records: Sequence[LogRecord]) -> list[Exception | None]:
        """Forward the events of `records` in one publish; return each record's rejection
        (None for a record whose events are published)."""
        outcomes: list[Exception | None] = []
        outgoing = []
        accepted: Counter[str] = Counter()
        for record in records:
            try:
                account, events = self._read(record)
            except Rejected as err:
                outcomes.append(err)
                continue
            stamp = record.timestamp_ms or self._clock.now_ms()
            source = f"{record.topic}:{record.partition}:{record.offset}"
            ids = [derived_ulid(stamp, f"{source}:{index}") for index in range(len(events))]
            outgoing.extend(self._ingest.records(account, events, ids))
            accepted[record.topic] += len(events)
            outcomes.append(None)
        await self._ingest.publish(outgoing)
        # Counted once published: a batch that fails is handled again, and must count once.
        for topic, count in accepted.items():
            intake_accepted(topic, count)
        for record, outcome in zip(records, outcomes, strict=True):
            if isinstance(outcome, Rejected):
                intake_rejected(record.topic, outcome.reason)
        return outcomes

    def _read(self, record: LogRecord) -> tuple[str, list[dict[str, Any]]]:
        key = next((v for name, v in record.headers if name == EVENT_KEY_HEADER), None)
        if key is None:
            raise Rejected("no_event_key", f"the record has no {EVENT_KEY_HEADER!r} header")
        account = self._keys.for_event_key(key.decode(errors="replace"))
        if account is None:
            raise Rejected("unknown_event_key", "unknown event key")
        events, problem = self._ingest.parse(record.value)
        if problem is not None:
            raise Rejected(problem.reason, f"{problem}; no event of this record was accepted")
        return account, events
