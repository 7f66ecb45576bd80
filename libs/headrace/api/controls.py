"""Run controls: cancel, bulk cancel, rerun and replay, invoke, signal.

Nothing here writes a run. Each control checks what it can from the stores, then publishes a
record keyed by the account to `schedule` (due now), which the scheduler hands to the executor:
the executor stays the only writer of runs, in dev and in distributed mode alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from headrace.core.clock import Clock
from headrace.core.errors import InputError
from headrace.core.ids import new_ulid
from headrace.engine import signals, system_events
from headrace.engine.replay import resolve_step
from headrace.expressions import ExpressionError, compile_expression, evaluate_bool
from headrace.messages.flow import schedule_key
from headrace.messages.records import (
    SCHEDULE_CODEC,
    CancelRun,
    Deliverable,
    Enqueue,
    Resume,
    StartRun,
)
from headrace.messages.state import ENDED, FunctionRecord, RunState
from headrace.messages.topics import Topics
from headrace.ports.log import Log
from headrace.ports.stores import Stores

# Accepts events for an account as the Event API does (the ingest's one path); returns their ids.
SendEvents = Callable[[str, list[dict[str, Any]]], Awaitable[list[str]]]

# A bulk cancellation looks at this many of the function's newest runs.
BULK_SCAN_LIMIT = 10_000
API_CANCEL_REASON = "cancelled through the API"


@dataclass(frozen=True)
class Cancellation:
    """A bulk cancellation as it was requested, with the runs it cancelled."""

    cancellation_id: str
    app_id: str
    fn_id: str
    started_after_ms: int | None
    started_before_ms: int
    expression: str | None
    run_ids: list[str]


class RunControls:
    def __init__(
        self, log_port: Log, topics: Topics, stores: Stores, clock: Clock, send: SendEvents
    ) -> None:
        self._log = log_port
        self._topics = topics
        self._stores = stores
        self._clock = clock
        self._send = send

    async def send_events(self, account_id: str, events: list[dict[str, Any]]) -> list[str]:
        return await self._send(account_id, events)

    async def _run(self, account_id: str, run_id: str) -> RunState:
        run = await self._stores.get_run(run_id)
        if run is None or run.account_id != account_id:
            raise InputError(f"run not found: {run_id}", status=404)
        return run

    async def _schedule(self, item: Deliverable, timer_id: str, key: str) -> None:
        """`key`: the run's on `schedule` (`messages.flow.schedule_key`)."""
        record = Enqueue(timer_id=timer_id, item=item, at_ms=0)
        await self._log.publish(self._topics.schedule, key, SCHEDULE_CODEC.encode(record))

    async def function(self, account_id: str, fn_id: str, app_id: str = "") -> FunctionRecord:
        """A synced function by its full id, or by the SDK's id within `app_id`."""
        fn = await self._stores.get_function(account_id, fn_id)
        if fn is None and app_id:
            fn = await self._stores.get_function(account_id, f"{app_id}-{fn_id}")
        if fn is None or (app_id and fn.app_id != app_id):
            raise InputError(f"function not found: {fn_id}", status=404)
        return fn

    # --- cancel ---

    async def cancel(self, account_id: str, run_id: str) -> RunState:
        """Ask the executor to cancel the run; a run that has ended is left as it is."""
        run = await self._run(account_id, run_id)
        if run.status not in ENDED:
            await self._schedule(
                CancelRun(account_id=account_id, run_id=run_id, reason=API_CANCEL_REASON),
                f"{run_id}:cancel:api",
                schedule_key(account_id, run.flow),
            )
        return run

    async def cancel_bulk(
        self,
        account_id: str,
        *,
        fn_id: str,
        app_id: str = "",
        started_after_ms: int | None = None,
        started_before_ms: int,
        expression: str | None = None,
    ) -> Cancellation:
        """Cancel the function's open runs started in the window whose first trigger event
        makes `expression` (CEL over `event`) true.

        Runs that start after the request are not affected.
        """
        if started_after_ms is not None and started_after_ms > started_before_ms:
            raise InputError("started_after must be before started_before")
        if expression:
            try:
                compile_expression(expression)
            except ExpressionError as err:
                raise InputError(f"invalid expression: {err}") from None
        fn = await self.function(account_id, fn_id, app_id)
        chosen = []
        for run in await self._stores.list_runs(account_id, fn_id=fn.fn_id, limit=BULK_SCAN_LIMIT):
            if run.status in ENDED or run.started_ms > started_before_ms:
                continue
            if started_after_ms is not None and run.started_ms < started_after_ms:
                continue
            event = run.events[0] if run.events else {}
            if expression and not evaluate_bool(expression, {"event": event}):
                continue
            chosen.append(run)
        cancellation_id = new_ulid(self._clock.now_ms())
        for run in chosen:
            await self._schedule(
                CancelRun(account_id=account_id, run_id=run.run_id, reason=API_CANCEL_REASON),
                f"{run.run_id}:cancel:{cancellation_id}",
                schedule_key(account_id, run.flow),
            )
        return Cancellation(
            cancellation_id=cancellation_id,
            app_id=fn.app_id,
            fn_id=fn.fn_id,
            started_after_ms=started_after_ms,
            started_before_ms=started_before_ms,
            expression=expression or None,
            run_ids=[run.run_id for run in chosen],
        )

    # --- rerun and replay ---

    async def rerun(self, account_id: str, run_id: str, from_step: str = "") -> str:
        """Start a new run with the same trigger events; returns its id.

        With `from_step` (a step's hash or name) it is a replay from that step: see `replay`.
        """
        original = await self._run(account_id, run_id)
        if original.status not in ENDED:
            raise InputError(f"run {run_id} has not ended ({original.status}): cancel it first")
        if from_step and resolve_step(original, from_step) is None:
            raise InputError(f"run {run_id} has no settled step {from_step!r}")
        return await self._start_again(original, "replay" if from_step else "rerun", from_step)

    async def replay(self, account_id: str, run_id: str) -> str:
        """Start a new run that keeps the original's step outputs before the step that failed,
        so only that step and what follows it run again; returns its id."""
        original = await self._run(account_id, run_id)
        if original.status != "failed":
            raise InputError(
                f"run {run_id} is {original.status}: only a failed run can be replayed from "
                "its failed step"
            )
        return await self._start_again(original, "replay", "")

    async def _start_again(self, original: RunState, started_by: str, from_step: str) -> str:
        new_run_id = new_ulid(self._clock.now_ms())
        start = StartRun(
            account_id=original.account_id,
            run_id=new_run_id,
            fn_id=original.fn_id,
            events=original.events,
            event_ids=original.event_ids,
            started_by=started_by,
            original_run_id=original.run_id,
            replay_from=from_step,
        )
        # The original's flow key: the scheduler forwards the start if the function's changed.
        key = schedule_key(original.account_id, original.flow)
        await self._schedule(start, f"{new_run_id}:start", key)
        return new_run_id

    # --- invoke ---

    async def invoke(
        self,
        account_id: str,
        fn_id: str,
        data: dict[str, Any],
        user: dict[str, Any] | None = None,
    ) -> str:
        """Start the function with `data`, as `step.invoke` does (an `inngest/function.invoked`
        event naming it); returns the event's id."""
        fn = await self.function(account_id, fn_id)
        if fn.archived:
            raise InputError(f"function {fn_id} was removed from its app")
        invoked: dict[str, Any] = {
            "name": system_events.INVOKED,
            "data": {**data, "_inngest": {"fn_id": fn.fn_id}},
        }
        if user is not None:
            invoked["user"] = user
        (event_id,) = await self._send(account_id, [invoked])
        return event_id

    # --- signal ---

    async def signal(self, account_id: str, signal: str, data: Any) -> str | None:
        """Resume the run whose step.waitForSignal holds `signal` with `data`; its id, or None
        when no run waits for it (as Inngest's executor.ResumeSignal: an expired wait is not
        resumed). The pause is deleted first, so of two signals (or a signal and the wait's
        timeout) one alone resumes the step."""
        now = self._clock.now_ms()
        key = signals.signal_key(account_id, signal)
        pause_id = await self._stores.holder(key, now)
        if pause_id is None:
            return None
        pause = await self._stores.get_pause(pause_id)
        if pause is None or pause.kind != "signal" or pause.step_hash is None:
            return None
        if pause.expires_ms <= now or not await self._stores.delete_pause(pause_id):
            return None
        # The wait is over: free the key (it expires now), or a wait for the signal made before
        # the resume reaches the run would read this one as not written yet, and conflict.
        await self._stores.swap(key, pause_id, pause_id, 0, now)
        resume = Resume(
            account_id=account_id,
            run_id=pause.run_id,
            step_hash=pause.step_hash,
            memo=signals.signal_memo(signal, data),
            reason="signal",
        )
        timer_id = f"{pause.run_id}:signal:{pause.step_hash}"
        await self._schedule(resume, timer_id, pause.schedule_key)
        return pause.run_id
