"""Rate limits (`rateLimit`) at the event, handled for the partition's flow state: the TAT of
each admission is written to the FlowStore (a new owner reloads it), and each skip is marked
under the event's dedupe key, so the first decision stands for an event handled again."""

from __future__ import annotations

import msgspec
import structlog
from headrace.services.runner.flows import RATE_LIMIT, RunnerFlows

from headrace.core.clock import Clock
from headrace.engine import system_events
from headrace.flow.config import rate_limit
from headrace.flow.ratelimit import (
    ADMITTED,
    MARKER_TTL_MS,
    RATE_LIMITED,
    SKIPPED,
    admit_repeat,
    marker_key,
)
from headrace.flow.runner_effects import PutRateLimit, RateLimitEffect, Skip
from headrace.messages.model import Event
from headrace.messages.state import FunctionRecord
from headrace.ports.stores import Stores

log = structlog.get_logger(__name__)

_enc = msgspec.msgpack.Encoder()


class RateLimiter:
    def __init__(self, stores: Stores, clock: Clock, flows: RunnerFlows) -> None:
        self._stores = stores
        self._clock = clock
        self._flows = flows

    async def limited(
        self, fn: FunctionRecord, event: Event, partition: int, dedupe: str, *, repeat: bool
    ) -> bool:
        """Whether `fn`'s rate limit skips this event (never an invoke)."""
        if event.name == system_events.INVOKED or not fn.config.get("rateLimit"):
            return False
        now = self._clock.now_ms()
        marker = marker_key(fn.account_id, fn.fn_id, dedupe)
        if repeat:
            first = await self._stores.claim(marker, ADMITTED, MARKER_TTL_MS, now)
            return RATE_LIMITED in admit_repeat(first)
        limit = rate_limit(fn.account_id, fn.fn_id, fn.config, event.payload)
        assert limit is not None  # the function has a rate limit
        flow = self._flows.of(partition)
        effects: list[RateLimitEffect] = flow.rate_limit(limit, now)
        for effect in effects:
            match effect:
                case PutRateLimit(key=key, tat=tat):
                    await self._stores.put_flow(partition, RATE_LIMIT, key, _enc.encode(tat))
                case Skip():
                    await self._stores.claim(marker, SKIPPED, MARKER_TTL_MS, now)
                    log.info(
                        "event skipped by the function's rate limit",
                        account_id=fn.account_id,
                        fn_id=fn.fn_id,
                        event_id=event.internal_id,
                    )
            flow.apply(effect)
        return RATE_LIMITED in effects
