"""What an ingest is made of, built one way in both modes: the distributed ingest (`wire` in
main.py) and `headrace dev`'s (dev/ingest.py) differ only in the routes they serve beside."""

from __future__ import annotations

from dataclasses import dataclass

from headrace.services.executor.outbox import Outbox
from headrace.services.ingest.events import EventIngest
from headrace.services.ingest.intake import Intake
from headrace.services.ingest.sync import AppSync

from headrace.api.context import ApiContext
from headrace.api.controls import RunControls
from headrace.core.backoff import interval_ms
from headrace.core.clock import Clock
from headrace.messages.topics import Topics
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.settings import Settings


@dataclass(frozen=True)
class IngestParts:
    events: EventIngest
    sync: AppSync
    ctx: ApiContext

    @classmethod
    def build(
        cls,
        settings: Settings,
        log_port: Log,
        topics: Topics,
        stores: Stores,
        clock: Clock,
    ) -> IngestParts:
        events = EventIngest(log_port, topics, clock)
        ctx = ApiContext(
            stores=stores,
            clock=clock,
            keys=settings.accounts(),
            controls=RunControls(log_port, topics, stores, clock, events.send),
            outbox=Outbox(log_port, topics, stores),
            retry_interval_ms=interval_ms(settings.retry_interval_s),
            max_steps=settings.max_steps,
            endpoint_timeout_ms=int(settings.endpoint_timeout_s * 1000),
        )
        return cls(events, AppSync(log_port, topics, stores, clock), ctx)

    def intake(self) -> Intake:
        """What reads the intake topics' records as events (main.py `wire_intake`)."""
        return Intake(self.events, self.ctx.keys, self.ctx.clock)
