"""Starting runs: one run per (function, event), whatever the record handled again after a
crash; rate limit at the event, singleton and `cancelOn` at the start, then `StartRun`."""

from __future__ import annotations

import structlog
from headrace.services.runner.cancellation import cancel_pauses
from headrace.services.runner.functions import AccountFunctions
from headrace.services.runner.pauses import Pauses, Schedule
from headrace.services.runner.ratelimit import RateLimiter
from headrace.services.runner.singleton import Singletons

from headrace.core.clock import Clock
from headrace.core.ids import new_ulid
from headrace.flow.config import EVENT_DEDUPE_TTL_MS, flow_key
from headrace.messages.model import Batch, Event
from headrace.messages.records import StartRun
from headrace.messages.state import FunctionRecord
from headrace.obs.tracing import run_span
from headrace.ports.stores import Stores

log = structlog.get_logger(__name__)


class RunStarter:
    def __init__(
        self,
        stores: Stores,
        clock: Clock,
        functions: AccountFunctions,
        pauses: Pauses,
        singletons: Singletons,
        rate_limiter: RateLimiter,
        schedule: Schedule,
    ) -> None:
        self._stores = stores
        self._clock = clock
        self._functions = functions
        self._pauses = pauses
        self._singletons = singletons
        self._rate_limiter = rate_limiter
        self._schedule = schedule

    async def start_run(self, fn: FunctionRecord, event: Event, partition: int) -> None:
        """Start the run of `fn` that `event` triggers, once per event id."""
        now = self._clock.now_ms()
        dedupe = str(event.payload.get("id") or event.internal_id)
        candidate = new_ulid(now)
        existing = await self._stores.claim(
            f"run:{fn.account_id}:{fn.fn_id}:{dedupe}", candidate, EVENT_DEDUPE_TTL_MS, now
        )
        if existing is not None:
            # A repeat of an event already handled: do again only what is idempotent, so a crash
            # between claiming and publishing still starts the run.
            if await self._stores.get_run(existing) is not None:
                return
        if await self._rate_limiter.limited(
            fn, event, partition, dedupe, repeat=existing is not None
        ):
            return
        await self._start(fn, existing or candidate, [event], partition)

    async def start_batch(self, batch: Batch, partition: int) -> None:
        """Start the run of a full or due batch (or debounce); its id is the run's."""
        fn = await self._functions.find(batch.account_id, batch.fn_id)
        if fn is None or fn.archived:
            log.warning(
                "batch dropped: its function is gone", fn_id=batch.fn_id, events=len(batch.events)
            )
            return
        events = [
            Event(
                internal_id=i,
                account_id=batch.account_id,
                name=str(p.get("name")),
                payload=p,
                received_ms=batch.opened_ms,
            )
            for i, p in zip(batch.event_ids, batch.events, strict=True)
        ]
        await self._start(fn, batch.batch_id, events, partition)

    async def _start(
        self, fn: FunctionRecord, run_id: str, events: list[Event], partition: int
    ) -> None:
        attributes = {
            "headrace.account_id": fn.account_id,
            "headrace.function_id": fn.fn_id,
            "headrace.app_id": fn.app_id,
            "headrace.events": len(events),
        }
        with (
            run_span("trigger", run_id, attributes),
            structlog.contextvars.bound_contextvars(fn_id=fn.fn_id, run_id=run_id),
        ):
            await self._publish_start(fn, run_id, events, partition)

    async def _publish_start(
        self, fn: FunctionRecord, run_id: str, events: list[Event], partition: int
    ) -> None:
        """Everything here is idempotent, so doing it again after a crash starts one run."""
        if not await self._singletons.admit(fn, run_id, events[0].payload):
            log.debug("run skipped: singleton running", fn_id=fn.fn_id, run_id=run_id)
            return
        for pause in cancel_pauses(fn, run_id, events, self._clock.now_ms()):
            await self._stores.put_pause(pause, partition)
            self._pauses.remember(pause, partition)
        for event in events:
            await self._stores.link_run(event.internal_id, run_id)
        start = StartRun(
            account_id=fn.account_id,
            run_id=run_id,
            fn_id=fn.fn_id,
            events=[e.payload for e in events],
            event_ids=[e.internal_id for e in events],
            function=fn,
        )
        key = flow_key(fn.account_id, fn.fn_id, fn.config)
        await self._schedule(start, f"{run_id}:start", 0, key)
