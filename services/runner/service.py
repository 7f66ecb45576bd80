"""The runner's record handler.

It owns, per partition: trigger matching, the index of pending pauses (waits, invokes, cancels),
run deduplication and the run-start flow controls (idempotency, debounce, batching, singleton)
and cron ticks. Pause and run decisions are made here only, by the partition's owner.
"""

from __future__ import annotations

from typing import Any

import structlog
from headrace.services.runner.batching import Batcher, batch_config
from headrace.services.runner.cron import CronTicks, cron_event
from headrace.services.runner.debounce import Debouncer, debounce_config
from headrace.services.runner.idempotency import first_of_its_key
from headrace.services.runner.ratelimit import RateLimiter
from headrace.services.runner.singleton import Singletons
from headrace.services.runner.triggers import matches

from headrace.core.clock import Clock
from headrace.core.durations import DurationError, parse_duration_ms
from headrace.core.ids import new_ulid
from headrace.engine import system_events
from headrace.expressions import ExpressionError, PauseIndex, substitute_event
from headrace.messages.model import Batch, Event, Pause
from headrace.messages.records import (
    EVENTS_CODEC,
    SCHEDULE_CODEC,
    BatchDue,
    CancelRun,
    CancelTimer,
    CronDue,
    Deliverable,
    Enqueue,
    EventAccepted,
    EventsRecord,
    FunctionsChanged,
    PauseCreated,
    PauseDeleted,
    Resume,
    StartRun,
    account_of,
)
from headrace.messages.state import FunctionRecord
from headrace.messages.topics import Topics
from headrace.obs.tracing import run_span
from headrace.ports.log import Log, LogRecord
from headrace.ports.stores import Stores

log = structlog.get_logger(__name__)

DEDUPE_TTL_MS = 24 * 3_600_000
DEFAULT_CANCEL_TIMEOUT_MS = 365 * 86_400_000
# How many of the newest events of a wait's name its look-back considers.
LOOKBACK_EVENTS = 100


class Runner:
    def __init__(self, log_port: Log, topics: Topics, stores: Stores, clock: Clock) -> None:
        self._log = log_port
        self._topics = topics
        self._stores = stores
        self._clock = clock
        self._index = PauseIndex()
        self._pauses: dict[str, tuple[Pause, int]] = {}
        self._functions: dict[str, list[FunctionRecord]] = {}
        self._batcher = Batcher(stores, clock, self._batch_due_at, self._start_batch)
        self._debouncer = Debouncer(self._batcher, clock, self._batch_due_at, self._cancel_due)
        self._singletons = Singletons(stores, clock, self._cancel_run)
        self._crons = CronTicks(clock, self._schedule_tick)
        self._rate_limiter = RateLimiter(stores, clock)

    # --- partition ownership ---

    async def on_assigned(self, partitions: set[int]) -> None:
        await self._batcher.own(partitions)
        await self._rate_limiter.own(partitions)
        for partition in partitions:
            for pause in await self._stores.pauses_for_partition(partition):
                self._remember(pause, partition)

    async def on_revoked(self, partitions: set[int]) -> None:
        self._batcher.release(partitions)
        self._rate_limiter.release(partitions)
        for pause_id, (_, partition) in list(self._pauses.items()):
            if partition in partitions:
                self._forget(pause_id)
        self._functions.clear()

    def _remember(self, pause: Pause, partition: int) -> None:
        if pause.kind == "signal":
            return  # resumed by the signal API, never by an event
        try:
            self._index.add(pause.pause_id, pause.event_name, pause.expression)
        except ExpressionError:
            log.warning("pause expression does not compile", pause_id=pause.pause_id)
            return
        self._pauses[pause.pause_id] = (pause, partition)

    def _forget(self, pause_id: str) -> None:
        self._index.remove(pause_id)
        self._pauses.pop(pause_id, None)

    # --- records ---

    async def handle(self, record: LogRecord) -> None:
        item = EVENTS_CODEC.decode(record.value)
        with structlog.contextvars.bound_contextvars(account_id=account_of(item)):
            await self._handle(item, record)

    async def _handle(self, item: EventsRecord, record: LogRecord) -> None:
        match item:
            case EventAccepted(event=event):
                await self._on_event(event, record.partition)
            case PauseCreated(pause=pause):
                self._remember(pause, record.partition)
                if pause.kind == "wait" and pause.since_ms and pause.pause_id in self._pauses:
                    await self._look_back(pause)
            case PauseDeleted(pause_id=pause_id):
                self._forget(pause_id)
            case FunctionsChanged(account_id=account_id):
                self._functions.pop(account_id, None)
                await self._crons.schedule_all(await self._account_functions(account_id))
            case BatchDue(batch_key=batch_key, batch_id=batch_id):
                await self._batcher.due(batch_key, batch_id)
            case CronDue() as due:
                await self._on_cron(due, record.partition)

    async def _on_event(self, event: Event, partition: int) -> None:
        bound = log.bind(account_id=event.account_id, event_id=event.internal_id, name=event.name)
        await self._stores.put_event(event)
        # Pauses first: a run's own trigger must not match the cancel pauses its start creates.
        await self._resolve_pauses(event)
        triggered = await self._triggered(event)
        if not triggered and event.name == system_events.INVOKED:
            await self._invoked_function_not_found(event)
        for fn in triggered:
            if not await first_of_its_key(self._stores, fn, event, self._clock.now_ms()):
                bound.debug("run skipped: idempotency key seen", fn_id=fn.fn_id)
                continue
            invoked = event.name == system_events.INVOKED
            if not invoked and debounce_config(fn) is not None:
                await self._debouncer.add(fn, event, partition)
                continue
            batched = not invoked and batch_config(fn) is not None
            if batched and await self._batcher.add(fn, event, partition):
                continue
            await self._start_run(fn, event, partition)
            bound.debug("run started", fn_id=fn.fn_id)

    async def _invoked_function_not_found(self, event: Event) -> None:
        """As Inngest's runner: a `step.invoke` of a function that does not exist (or no longer)
        ends at once, with the invoking step failed by the `function.finished` event it waits
        for, whose error names the function (pkg/execution/runner/runner.go,
        FindInvokedFunction; pkg/execution/executor/util.go, CreateInvokeFailedEvent)."""
        meta = (event.payload.get("data") or {}).get("_inngest") or {}
        correlation = meta.get("correlation_id") if isinstance(meta, dict) else None
        if not isinstance(correlation, str):
            return
        target = meta.get("fn_id")
        now = self._clock.now_ms()
        internal_id = new_ulid(now)
        finished = Event(
            internal_id=internal_id,
            account_id=event.account_id,
            name=system_events.FINISHED,
            payload={
                "name": system_events.FINISHED,
                "id": internal_id,
                "ts": now,
                "data": {
                    "function_id": "",
                    "run_id": "",
                    "correlation_id": correlation,
                    "error": {
                        "name": "Error",
                        "message": f"could not find function with ID: {target}",
                    },
                },
            },
            received_ms=now,
        )
        log.info("invoked function not found", fn_id=target, correlation_id=correlation)
        record = EVENTS_CODEC.encode(EventAccepted(event=finished))
        await self._log.publish(self._topics.events, event.account_id, record)

    async def _account_functions(self, account_id: str) -> list[FunctionRecord]:
        functions = self._functions.get(account_id)
        if functions is None:
            functions = await self._stores.list_functions(account_id)
            self._functions[account_id] = functions
        return functions

    async def _triggered(self, event: Event) -> list[FunctionRecord]:
        functions = await self._account_functions(event.account_id)
        if event.name == system_events.INVOKED:
            meta = (event.payload.get("data") or {}).get("_inngest") or {}
            target = meta.get("fn_id") if isinstance(meta, dict) else None
            return [fn for fn in functions if fn.fn_id == target and not fn.archived]
        return [fn for fn in functions if matches(fn, event.payload)]

    async def _start_run(self, fn: FunctionRecord, event: Event, partition: int) -> None:
        now = self._clock.now_ms()
        dedupe = str(event.payload.get("id") or event.internal_id)
        candidate = new_ulid(now)
        existing = await self._stores.claim(
            f"run:{fn.account_id}:{fn.fn_id}:{dedupe}", candidate, DEDUPE_TTL_MS, now
        )
        if existing is not None:
            # A repeat of an event already handled: do again only what is idempotent, so a crash
            # between claiming and publishing still starts the run.
            if await self._stores.get_run(existing) is not None:
                return
        if await self._rate_limited(fn, event, partition, dedupe, repeat=existing is not None):
            return
        await self._start(fn, existing or candidate, [event], partition)

    async def _rate_limited(
        self, fn: FunctionRecord, event: Event, partition: int, dedupe: str, *, repeat: bool
    ) -> bool:
        """Whether `fn`'s rate limit skips this event. The first decision stands: a skip is
        marked under the event's dedupe key, so a repeat of the event after a crash is skipped
        again, and an admitted event is not counted twice."""
        if event.name == system_events.INVOKED or not fn.config.get("rateLimit"):
            return False
        now = self._clock.now_ms()
        marker = f"ratelimited:{fn.account_id}:{fn.fn_id}:{dedupe}"
        if repeat:
            first = await self._stores.claim(marker, "admitted", DEDUPE_TTL_MS, now)
            return first == "skipped"
        if await self._rate_limiter.allow(fn, event, partition):
            return False
        await self._stores.claim(marker, "skipped", DEDUPE_TTL_MS, now)
        log.info(
            "event skipped by the function's rate limit",
            account_id=fn.account_id,
            fn_id=fn.fn_id,
            event_id=event.internal_id,
        )
        return True

    async def _start_batch(self, batch: Batch, partition: int) -> None:
        fn = next(
            (f for f in await self._account_functions(batch.account_id) if f.fn_id == batch.fn_id),
            None,
        )
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
        now = self._clock.now_ms()
        for i, cancel in enumerate(fn.config.get("cancel") or []):
            pause = _cancel_pause(fn, run_id, i, cancel, events, now)
            if pause is not None:
                await self._stores.put_pause(pause, partition)
                self._remember(pause, partition)
        for event in events:
            await self._stores.link_run(event.internal_id, run_id)
        start = StartRun(
            account_id=fn.account_id,
            run_id=run_id,
            fn_id=fn.fn_id,
            events=[e.payload for e in events],
            event_ids=[e.internal_id for e in events],
        )
        await self._schedule(start, f"{run_id}:start")

    async def _resolve_pauses(self, event: Event) -> None:
        now = self._clock.now_ms()
        for pause_id in self._index.match(event.payload):
            pause, _ = self._pauses[pause_id]
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
        self._forget(pause.pause_id)
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
            await self._schedule(item, timer_id)

    async def _schedule(self, item: Deliverable, timer_id: str, at_ms: int = 0) -> None:
        await self._log.publish(
            self._topics.schedule,
            item.account_id,
            SCHEDULE_CODEC.encode(Enqueue(timer_id=timer_id, item=item, at_ms=at_ms)),
        )

    async def _on_cron(self, due: CronDue, partition: int) -> None:
        functions = await self._account_functions(due.account_id)
        fn = next((f for f in functions if f.fn_id == due.fn_id), None)
        trigger = self._crons.trigger_of(fn, due)
        if fn is None or trigger is None:
            log.debug("cron schedule gone: its cycle ends", fn_id=due.fn_id)
            return
        event = cron_event(due)
        await self._stores.put_event(event)
        await self._start_run(fn, event, partition)
        await self._crons.schedule_next(fn, trigger, due)

    async def _schedule_tick(self, due: CronDue, timer_id: str, at_ms: int) -> None:
        await self._schedule(due, timer_id, at_ms)

    async def _cancel_run(self, account_id: str, run_id: str) -> None:
        cancel = CancelRun(account_id=account_id, run_id=run_id, reason="singleton")
        await self._schedule(cancel, f"{run_id}:cancel")

    async def _cancel_due(self, batch: Batch) -> None:
        await self._log.publish(
            self._topics.schedule,
            batch.account_id,
            SCHEDULE_CODEC.encode(
                CancelTimer(account_id=batch.account_id, timer_id=f"{batch.batch_id}:due")
            ),
        )

    async def _batch_due_at(self, batch: Batch, at_ms: int) -> None:
        due = BatchDue(
            account_id=batch.account_id, batch_key=batch.batch_key, batch_id=batch.batch_id
        )
        await self._schedule(due, f"{batch.batch_id}:due", at_ms)


def _memo_for(pause: Pause, payload: dict[str, Any]) -> Any:
    """A wait gets the event itself; an invoke gets the invoked run's result or error."""
    if pause.kind != "invoke":
        return payload
    data = payload.get("data") or {}
    if "error" in data:
        error = data["error"] if isinstance(data["error"], dict) else {}
        return {
            "error": {
                "name": str(error.get("name") or "Error"),
                "message": str(error.get("message") or error.get("error") or "invoked run failed"),
                **({"stack": error["stack"]} if isinstance(error.get("stack"), str) else {}),
            }
        }
    return {"data": data.get("result")}


def _cancel_pause(
    fn: FunctionRecord,
    run_id: str,
    index: int,
    cancel: dict[str, Any],
    events: list[Event],
    now: int,
) -> Pause | None:
    expression = cancel.get("if") or None
    try:
        if expression is not None:
            expression = substitute_event(str(expression), events[0].payload)
        timeout = cancel.get("timeout")
        timeout_ms = parse_duration_ms(str(timeout)) if timeout else DEFAULT_CANCEL_TIMEOUT_MS
    except (ExpressionError, DurationError) as err:
        # Not str(err): an expression error quotes the expression, with the event's values in it.
        reason = err.message if isinstance(err, ExpressionError) else str(err)
        log.warning("cancelOn entry skipped", fn_id=fn.fn_id, index=index, error=reason)
        return None
    return Pause(
        pause_id=f"{run_id}:cancel:{index}",
        account_id=fn.account_id,
        run_id=run_id,
        fn_id=fn.fn_id,
        kind="cancel",
        event_name=str(cancel.get("event")),
        expression=expression,
        expires_ms=now + timeout_ms,
        since_ms=max(event.received_ms for event in events),
    )
