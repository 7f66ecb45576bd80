"""The runner's record handler: each record of `events` goes to the decision it needs, and
what the decisions schedule is published here.

The runner owns, per partition: trigger matching (`triggers.py`), the index of pending pauses
(waits, invokes, cancels: `pauses.py`), the run-start flow controls and run deduplication
(`starts.py`), and cron ticks (`cron.py`). The flow controls decide in `headrace.flow`
(idempotency, debounce, batching, rate limit, singleton); their partition state is
`flows.py`'s, and `idempotency.py`, `buffers.py`, `ratelimit.py` and `singleton.py` carry out
what they decide. Pause and run decisions are made by the partition's owner only.
"""

from __future__ import annotations

import structlog
from headrace.services.runner.buffers import Buffers
from headrace.services.runner.cron import CronTicks, cron_event
from headrace.services.runner.flows import RunnerFlows
from headrace.services.runner.functions import AccountFunctions
from headrace.services.runner.idempotency import first_of_its_key
from headrace.services.runner.invokes import invoked_fn_id, not_found_event
from headrace.services.runner.pauses import Pauses
from headrace.services.runner.ratelimit import RateLimiter
from headrace.services.runner.singleton import Singletons
from headrace.services.runner.starts import RunStarter
from headrace.services.runner.triggers import triggered

from headrace.core.clock import Clock
from headrace.engine import system_events
from headrace.flow.batching import batch_config
from headrace.flow.config import flow_key
from headrace.flow.debounce import debounce_config
from headrace.messages.model import Batch, Event
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
    account_of,
)
from headrace.messages.state import FunctionRecord
from headrace.messages.topics import Topics
from headrace.ports.log import Log, LogRecord
from headrace.ports.stores import Stores

log = structlog.get_logger(__name__)


class Runner:
    def __init__(self, log_port: Log, topics: Topics, stores: Stores, clock: Clock) -> None:
        self._log = log_port
        self._topics = topics
        self._stores = stores
        self._clock = clock
        self._functions = AccountFunctions(stores)
        self._pauses = Pauses(stores, clock, self._schedule)
        self._flows = RunnerFlows(stores, clock)
        self._starter = RunStarter(
            stores,
            clock,
            self._functions,
            self._pauses,
            Singletons(stores, clock, self._cancel_run),
            RateLimiter(stores, clock, self._flows),
            self._schedule,
        )
        self._buffers = Buffers(
            stores,
            clock,
            self._flows,
            self._batch_due_at,
            self._cancel_due,
            self._starter.start_batch,
        )
        self._crons = CronTicks(clock, self._schedule)

    # --- partition ownership ---

    async def on_assigned(self, partitions: set[int]) -> None:
        await self._flows.own(partitions)
        await self._pauses.own(partitions)

    async def on_revoked(self, partitions: set[int]) -> None:
        self._flows.release(partitions)
        self._pauses.release(partitions)
        self._functions.clear()

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
                await self._pauses.announced(pause, record.partition)
            case PauseDeleted(pause_id=pause_id):
                self._pauses.forget(pause_id)
            case FunctionsChanged(account_id=account_id):
                self._functions.forget(account_id)
                await self._crons.schedule_all(await self._functions.of(account_id))
            case BatchDue(batch_key=batch_key, batch_id=batch_id):
                await self._buffers.due(batch_key, batch_id, record.partition)
            case CronDue() as due:
                await self._on_cron(due, record.partition)

    async def _on_event(self, event: Event, partition: int) -> None:
        bound = log.bind(account_id=event.account_id, event_id=event.internal_id, name=event.name)
        await self._stores.put_event(event)
        # Pauses first: a run's own trigger must not match the cancel pauses its start creates.
        await self._pauses.resolve(event)
        invoked = event.name == system_events.INVOKED
        functions = triggered(await self._functions.of(event.account_id), event)
        if not functions and invoked:
            await self._invoked_function_not_found(event)
        for fn in functions:
            if not await first_of_its_key(self._stores, fn, event, self._clock.now_ms()):
                bound.debug("run skipped: idempotency key seen", fn_id=fn.fn_id)
                continue
            if not invoked and debounce_config(fn) is not None:
                await self._buffers.debounce(fn, event, partition)
                continue
            batched = not invoked and batch_config(fn) is not None
            if batched and await self._buffers.batch(fn, event, partition):
                continue
            await self._starter.start_run(fn, event, partition)
            bound.debug("run started", fn_id=fn.fn_id)

    async def _invoked_function_not_found(self, event: Event) -> None:
        finished = not_found_event(event, self._clock.now_ms())
        if finished is None:
            return
        correlation = finished.payload["data"]["correlation_id"]
        log.info(
            "invoked function not found", fn_id=invoked_fn_id(event), correlation_id=correlation
        )
        record = EVENTS_CODEC.encode(EventAccepted(event=finished))
        await self._log.publish(self._topics.events, event.account_id, record)

    async def _on_cron(self, due: CronDue, partition: int) -> None:
        fn = await self._functions.find(due.account_id, due.fn_id)
        trigger = self._crons.trigger_of(fn, due)
        if fn is None or trigger is None:
            log.debug("cron schedule gone: its cycle ends", fn_id=due.fn_id)
            return
        event = cron_event(due)
        await self._stores.put_event(event)
        await self._starter.start_run(fn, event, partition)
        await self._crons.schedule_next(fn, trigger, due)

    # --- what the decisions schedule ---

    async def _schedule(
        self, item: Deliverable, timer_id: str, at_ms: int = 0, key: str = ""
    ) -> None:
        """`key`: a run's flow key (`flow.config.flow_key`); the account's when empty."""
        await self._log.publish(
            self._topics.schedule,
            key or item.account_id,
            SCHEDULE_CODEC.encode(Enqueue(timer_id=timer_id, item=item, at_ms=at_ms)),
        )

    async def _cancel_run(self, fn: FunctionRecord, run_id: str) -> None:
        cancel = CancelRun(account_id=fn.account_id, run_id=run_id, reason="singleton")
        key = flow_key(fn.account_id, fn.fn_id, fn.config)
        await self._schedule(cancel, f"{run_id}:cancel", 0, key)

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
