"""Cron triggers: each schedule of a function has exactly one pending tick, a timer of the
scheduler, kept by the owner of the account's partition.

- The timer id is fixed by (account, function, schedule, tick), so scheduling the same tick
  twice (a re-sync, a record handled again after a crash) makes one timer; the tick's run id is
  fixed by (function, tick) through the run dedupe key, so a tick fired twice (a scheduler
  killed after firing, before deleting the timer) starts one run.
- A sync that changes the function tells the runner (FunctionsChanged), which schedules the
  next tick of each current schedule. When a tick fires (CronDue), the runner checks the
  function still has that schedule: a schedule removed or changed by a re-sync stops there, as
  Inngest breaks its cron cycle when the expression is gone. Otherwise it starts the run with
  Inngest's cron event and schedules the next tick.
- Missed ticks: the pending tick's timer is durable, so a tick missed while no scheduler owned
  the partition (down, rebalancing) fires once, late, on takeover; the next tick is the first
  one after the later of that tick and now, so older missed ticks are not replayed.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from headrace.core.clock import Clock
from headrace.core.cron import CronError, jitter_ms, parse_cron
from headrace.core.durations import DurationError, parse_duration_ms
from headrace.core.ids import derived_ulid
from headrace.engine import system_events
from headrace.messages.model import Event
from headrace.messages.records import CronDue
from headrace.messages.state import FunctionRecord

ScheduleTick = Callable[[CronDue, str, int], Awaitable[None]]


def cron_triggers(fn: FunctionRecord) -> list[dict[str, Any]]:
    return [
        t
        for t in fn.config.get("triggers") or []
        if isinstance(t, dict) and isinstance(t.get("cron"), str)
    ]


class CronTicks:
    def __init__(self, clock: Clock, schedule: ScheduleTick) -> None:
        self._clock = clock
        self._schedule = schedule

    async def schedule_all(self, functions: list[FunctionRecord]) -> None:
        """Make sure each current schedule has its next tick pending (after a sync)."""
        now = self._clock.now_ms()
        for fn in functions:
            if fn.archived:
                continue
            for trigger in cron_triggers(fn):
                await self._schedule_after(fn, trigger, now)

    def trigger_of(self, fn: FunctionRecord | None, due: CronDue) -> dict[str, Any] | None:
        """The function's trigger for the due tick's schedule; None when a sync removed it."""
        if fn is None or fn.archived:
            return None
        return next((t for t in cron_triggers(fn) if t["cron"] == due.cron), None)

    async def schedule_next(
        self, fn: FunctionRecord, trigger: dict[str, Any], due: CronDue
    ) -> None:
        await self._schedule_after(fn, trigger, max(due.tick_ms, self._clock.now_ms()))

    async def _schedule_after(
        self, fn: FunctionRecord, trigger: dict[str, Any], after: int
    ) -> None:
        expression = str(trigger["cron"])
        try:
            tick = parse_cron(expression).next_ms(after)
        except CronError:
            return  # refused at sync; a function synced before that check never fires
        if tick is None:
            return
        timer_id = f"cron:{fn.account_id}:{fn.fn_id}:{_digest(expression)}:{tick}"
        fire = tick + jitter_ms(_jitter_max_ms(trigger), timer_id)
        due = CronDue(
            account_id=fn.account_id, fn_id=fn.fn_id, cron=expression, tick_ms=tick, fire_ms=fire
        )
        await self._schedule(due, timer_id, fire)


def cron_event(due: CronDue) -> Event:
    """Inngest's cron event: its id (the run's dedupe key) is the tick's RFC 3339 time."""
    scheduled = _rfc3339(due.tick_ms)
    payload = {
        "id": scheduled,
        "name": system_events.CRON,
        "data": {"cron": due.cron, "scheduledAt": scheduled, "fireAt": _rfc3339(due.fire_ms)},
        "ts": due.fire_ms,
    }
    return Event(
        internal_id=derived_ulid(due.tick_ms, f"{due.account_id}:{due.fn_id}:{due.cron}"),
        account_id=due.account_id,
        name=system_events.CRON,
        payload=payload,
        received_ms=due.fire_ms,
    )


def _rfc3339(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(expression: str) -> str:
    return hashlib.sha1(expression.encode()).hexdigest()[:12]


def _jitter_max_ms(trigger: dict[str, Any]) -> int:
    try:
        return parse_duration_ms(str(trigger.get("jitter") or ""))
    except DurationError:
        return 0
