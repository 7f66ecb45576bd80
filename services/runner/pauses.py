"""The pending pauses (waits, invokes, cancels) of the partitions this runner owns, indexed in
memory by the literals their expressions compare, and what an event that matches one does: a
wait or invoke resumes its step, a cancel cancels its run."""

from __future__ import annotations

from typing import Any, Protocol

import structlog
from headrace.services.runner.invokes import invoke_result

from headrace.core.clock import Clock
from headrace.expressions import ExpressionError, PauseIndex
from headrace.messages.model import Event, Pause
from headrace.messages.records import CancelRun, Deliverable, Resume
from headrace.obs.tracing import run_span
from headrace.ports.stores import Stores

log = structlog.get_logger(__name__)

# How many of the newest events of a wait's name its look-back considers.
LOOKBACK_EVENTS = 100


class Schedule(Protocol):
    async def __call__(self, item: Deliverable, timer_id: str, at_ms: int, key: str) -> None:
        """Publish `item` to `schedule` under `key`, due at `at_ms` (0: now)."""


class Pauses:
    def __init__(self, stores: Stores, clock: Clock, schedule: Schedule) -> None:
        self._stores = stores
        self._clock = clock
        self._schedule = schedule
        self._index = PauseIndex()
        self._pauses: dict[str, tuple[Pause, int]] = {}

    async def own(self, partitions: set[int]) -> None:
        for partition in partitions:
            for pause in await self._stores.pauses_for_partition(partition):
                self.remember(pause, partition)

    def release(self, partitions: set[int]) -> None:
        for pause_id, (_, partition) in list(self._pauses.items()):
            if partition in partitions:
                self.forget(pause_id)

    def remember(self, pause: Pause, partition: int) -> None:
        if pause.kind == "signal":
            return  # resumed by the signal API, never by an event
        try:
            self._index.add(pause.pause_id, pause.event_name, pause.expression)
        except ExpressionError:
            log.warning("pause expression does not compile", pause_id=pause.pause_id)
            return
        self._pauses[pause.pause_id] = (pause, partition)

    def forget(self, pause_id: str) -> None:
        self._index.remove(pause_id)
        self._pauses.pop(pause_id, None)

    async def announced(self, pause: Pause, partition: int) -> None:
        """A run's pause was created: index it, and let a wait look back for its event."""
        self.remember(pause, partition)
        if pause.kind == "wait" and pause.since_ms and pause.pause_id in self._pauses:
            await self._look_back(pause)

    async def resolve(self, event: Event) -> None:
        """Settle every pause `event` matches."""
        now = self._clock.now_ms()
        for pause_id in self._index.match(event.payload):
            kept = self._pauses.get(pause_id)
            if kept is None:
                continue  # another partition's pause, settled meanwhile by an event of its own
            pause, _ = kept
            # The index holds every account's pauses of this runner's partitions: an event
            # settles only its own account's (tenants deploy the same apps and event names).
            if pause.account_id != event.account_id:
                continue
            if pause.expires_ms < now or event.received_ms < pause.since_ms:
                continue
            if pause.kind == "cancel":
                await self._schedule_matched(
                    pause,
                    CancelRun(account_id=pause.account_id, run_id=pause.run_id),
                    f"{pause.run_id}:cancel",
                )
                continue
            await self._resume(pause, event)

    async def _look_back(self, pause: Pause) -> None:
        """A wait began when the call declaring it was sent, before its pause was announced:
        the oldest event of its name this partition handled since then that matches resumes
        it, so a client that sends the event as soon as it sees the run start is not missed.
        Bounded to the newest LOOKBACK_EVENTS of the name (docs/waits.md)."""
        recent = await self._stores.list_events(
            pause.account_id, name=pause.event_name, limit=LOOKBACK_EVENTS
        )
        since = [e for e in recent if e.received_ms >= pause.since_ms]
        for event in sorted(since, key=lambda e: (e.received_ms, e.internal_id)):
            if pause.pause_id in self._index.match(event.payload):
                await self._resume(pause, event)
                return

    async def _resume(self, pause: Pause, event: Event) -> None:
        """`event` settles the wait or invoke of `pause`."""
        # Forget first so a later event in this partition cannot take the same pause;
        # publish before deleting so a crash in between repeats the resume, never loses it.
        self.forget(pause.pause_id)
        assert pause.step_hash is not None
        await self._schedule_matched(
            pause,
            Resume(
                account_id=pause.account_id,
                run_id=pause.run_id,
                step_hash=pause.step_hash,
                memo=_memo_for(pause, event.payload),
                reason="event",
            ),
            f"{pause.run_id}:event:{pause.step_hash}",
        )
        await self._stores.delete_pause(pause.pause_id)

    async def _schedule_matched(self, pause: Pause, item: Deliverable, timer_id: str) -> None:
        """An event matched a pause of a run: a span of that run, around scheduling its effect."""
        attributes = {
            "headrace.account_id": pause.account_id,
            "headrace.function_id": pause.fn_id,
            "headrace.pause.kind": pause.kind,
            "headrace.pause.event": pause.event_name,
        }
        if pause.step_hash is not None:
            attributes["headrace.step.hash"] = pause.step_hash
        with run_span("pause.match", pause.run_id, attributes):
            await self._schedule(item, timer_id, 0, pause.schedule_key)


def _memo_for(pause: Pause, payload: dict[str, Any]) -> Any:
    """A wait gets the event itself; an invoke gets the invoked run's result or error."""
    return invoke_result(payload) if pause.kind == "invoke" else payload
