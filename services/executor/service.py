"""The executor's record handler: start runs, call apps, apply outcomes, resume and cancel."""

from __future__ import annotations

import collections
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from headrace.services.executor.locks import RunLocks
from headrace.services.executor.observe import (
    call_attributes,
    observe_call,
    observe_run_end,
    observe_wait,
)
from headrace.services.executor.outbox import Outbox

from headrace.core.clock import Clock
from headrace.core.errors import Conflict, Fenced
from headrace.core.ids import new_ulid
from headrace.engine.machine import RunMachine
from headrace.engine.replay import Seed, replay_seed
from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.engine.transition import Transition
from headrace.messages.flow import lease_id
from headrace.messages.records import (
    WORK_CODEC,
    Call,
    CancelRun,
    EndpointTimeout,
    Resume,
    StartRun,
    WorkRecord,
)
from headrace.messages.state import ENDED, FunctionRecord, RunState
from headrace.messages.topics import Topics
from headrace.obs.metrics import run_started
from headrace.obs.tracing import run_span
from headrace.ports.log import Log, LogRecord
from headrace.ports.stores import Stores
from headrace.protocol.checkpoint import queue_item_id
from headrace.protocol.driver import AppDriver
from headrace.protocol.endpoint import endpoint_request
from headrace.protocol.ops import AIGateway, Gateway, Op, Outcome
from headrace.protocol.registration import retries_of, step_url
from headrace.protocol.request import build_body, call_url
from headrace.runtime.ownership import Ownership
from headrace.runtime.signal_claims import claim_signals

log = structlog.get_logger(__name__)


# A record whose run another writer changed meanwhile is handled again this many times here;
# then the conflict goes to the consume loop, which retries the record with backoff.
_CONFLICT_ROUNDS = 5

T = TypeVar("T")


@dataclass(frozen=True)
class Handling:
    """The record being handled: its partition and id (partition:offset), and the epoch of
    this executor's ownership of the partition, stamped on every run it writes."""

    partition: int
    record_id: str
    epoch: int


@dataclass(frozen=True)
class PreparedCall:
    run: RunState
    fn: FunctionRecord
    body: bytes
    stack_len: int  # the run's stack when the body was built
    memo_keys: set[str]


class Executor:
    def __init__(
        self,
        log_port: Log,
        topics: Topics,
        stores: Stores,
        driver: AppDriver,
        clock: Clock,
        *,
        server_kind: str = "dev",
        backoff_scale: float = 1.0,
        rng: random.Random | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
    ) -> None:
        self._stores = stores
        self._driver = driver
        self._clock = clock
        self._server_kind = server_kind
        self._backoff_scale = backoff_scale
        self._rng = rng
        self._max_steps = max_steps
        self._locks = RunLocks()
        self._outbox = Outbox(log_port, topics, stores)
        self._ownership = Ownership(stores, clock)
        self._in_flight: set[tuple[str, str | None, int, int]] = set()
        # For runs with calls built and not yet sent: how many, and the newest version of the
        # run this executor has read (to build a call) or written since the first was built; a
        # call built from an older version is stale (see _check_unchanged).
        self._unsent: collections.Counter[str] = collections.Counter()
        self._written: dict[str, int] = {}

    async def on_assigned(self, partitions: set[int]) -> None:
        await self._ownership.on_assigned(partitions)

    async def on_revoked(self, partitions: set[int]) -> None:
        await self._ownership.on_revoked(partitions)

    def _new_id(self) -> str:
        return new_ulid(self._clock.now_ms())

    def _machine(self, run: RunState, memo_keys: set[str], fn: FunctionRecord | None) -> RunMachine:
        retries = retries_of(fn.config) if fn is not None else 0
        return RunMachine(
            run,
            memo_keys,
            max_attempts=retries + 1,
            now_ms=self._clock.now_ms(),
            new_id=self._new_id,
            rng=self._rng,
            backoff_scale=self._backoff_scale,
            max_steps=self._max_steps,
        )

    async def handle(self, record: LogRecord) -> None:
        item = WORK_CODEC.decode(record.value)
        with structlog.contextvars.bound_contextvars(
            account_id=item.account_id, run_id=item.run_id
        ):
            epoch = self._ownership.epoch(record.partition)
            if epoch is None:
                raise Fenced(f"partition {record.partition} is not this executor's")
            handling = Handling(record.partition, f"{record.partition}:{record.offset}", epoch)
            await self._handle(item, handling)

    async def _handle(self, item: WorkRecord, h: Handling) -> None:
        match item:
            case StartRun():
                await self._start(item, h)
            case Call():
                await self._call(item, h)
            case Resume():
                await self._resume(item, h)
            case CancelRun():
                await self._settle(item.run_id, h, lambda m: True, lambda m: m.cancel(item.reason))
            case EndpointTimeout():
                await self._settle(
                    item.run_id,
                    h,
                    lambda m: m.request_holds_run(),
                    lambda m: m.time_out_request(item.after_ms),
                )

    async def _commit(
        self,
        run: RunState,
        out: Transition,
        h: Handling,
        *,
        create: bool = False,
        release: str | None = None,
    ) -> bool:
        done = await self._outbox.commit(
            run, out, h.record_id, h.epoch, create=create, release=release
        )
        if run.run_id in self._written:
            self._written[run.run_id] = max(self._written[run.run_id], run.version)
        return done

    async def _transact(self, run_id: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step`, a read, a decision and a write of one run, under the run's lock; when
        the write finds the run changed by another writer, read and decide again."""
        for _ in range(_CONFLICT_ROUNDS - 1):
            try:
                async with self._locks.hold(run_id):
                    return await step()
            except Conflict as conflict:
                log.info("run changed while handled; handling the record again", why=str(conflict))
        async with self._locks.hold(run_id):
            return await step()

    async def _read(self, run_id: str, h: Handling) -> tuple[RunState, dict[str, bytes]] | None:
        """The run and its memos as stored now; Fenced when a newer owner of the partition has
        written the run (this executor has lost the partition, whether it knows yet or not)."""
        found = await self._stores.get_run_and_memos(run_id)
        if (
            found is not None
            and found[0].owner_epoch > h.epoch
            and await self._ownership.superseded(h.partition, h.epoch)
        ):
            raise Fenced(
                f"run {run_id} was written by the owner of epoch {found[0].owner_epoch}; "
                f"this executor holds epoch {h.epoch}"
            )
        return found

    async def _start(self, item: StartRun, h: Handling) -> None:
        seed = await self._replay_seed(item)

        async def step() -> RunState | None:
            found = await self._read(item.run_id, h)
            if found is not None:
                existing = found[0]
                if existing.last_record == h.record_id:
                    await self._outbox.publish(existing)
                return None
            fn = await self._stores.get_function(item.account_id, item.fn_id)
            run = RunState(
                run_id=item.run_id,
                account_id=item.account_id,
                fn_id=item.fn_id,
                app_id=fn.app_id if fn is not None else "",
                events=item.events,
                event_ids=item.event_ids,
                started_ms=self._clock.now_ms(),
                flow=item.flow,
                started_by=item.started_by,
                original_run_id=item.original_run_id,
            )
            machine = self._machine(run, set(), fn)
            machine.start()
            if seed is not None:
                machine.seed(seed.stack, seed.memos, seed.step_names)
            if item.original_run_id:
                # A rerun is listed with the runs of its trigger events, after the original.
                for event_id in item.event_ids:
                    await self._stores.link_run(event_id, item.run_id)
            if fn is None or fn.archived:
                machine.fail(_gone(item.fn_id, fn))
            if not await self._commit(run, machine.out, h, create=True):
                raise Conflict(f"run {item.run_id} was created meanwhile")
            return run

        run = await self._transact(item.run_id, step)
        if run is None:
            return
        run_started(run.fn_id)
        if run.status in ENDED:
            observe_run_end(run)

    async def _resume(self, item: Resume, h: Handling) -> None:
        waited: dict[str, tuple[str, int]] = {}

        def apply(machine: RunMachine) -> None:
            waited.clear()
            kind = machine.run.planned.get(item.step_hash)
            since = machine.run.wait_started_ms.get(item.step_hash)
            if kind is not None and since is not None:
                waited[kind] = (item.step_hash, since)
            machine.apply_resume(item)

        run = await self._settle(item.run_id, h, lambda m: m.is_current_resume(item), apply)
        if run is not None:
            for kind, (step_hash, since) in waited.items():
                observe_wait(run, step_hash, kind, since, self._clock.now_ms())

    async def _replay_seed(self, item: StartRun) -> Seed | None:
        if item.started_by != "replay":
            return None
        found = await self._stores.get_run_and_memos(item.original_run_id)
        if found is None:
            return None
        original, memos = found
        history = await self._stores.list_history(original.run_id)
        return replay_seed(original, memos, history, item.replay_from)

    async def _settle(
        self,
        run_id: str,
        h: Handling,
        is_current: Callable[[RunMachine], bool],
        apply: Callable[[RunMachine], None],
    ) -> RunState | None:
        """Apply a change to the run; return the run when it was applied (and committed)."""

        async def step() -> tuple[RunState, bool] | None:
            found = await self._read(run_id, h)
            if found is None:
                return None
            run, memos = found
            if run.last_record == h.record_id:
                await self._outbox.publish(run)
                return None
            fn = await self._stores.get_function(run.account_id, run.fn_id)
            machine = self._machine(run, set(memos), fn)
            if not is_current(machine):
                return None
            was_ended = run.status in ENDED
            apply(machine)
            await self._commit(run, machine.out, h)
            return run, was_ended

        settled = await self._transact(run_id, step)
        if settled is None:
            return None
        run, was_ended = settled
        if run.status in ENDED and not was_ended:
            observe_run_end(run)
        return run

    async def _call(self, item: Call, h: Handling) -> None:
        # A call the scheduler gated holds a lease until its outcome is stored.
        lease = (
            lease_id(item.run_id, item.target, item.seq, item.attempt)
            if item.flow is not None
            else None
        )
        for _ in range(_CONFLICT_ROUNDS):
            prepared = await self._transact(item.run_id, lambda: self._prepare_call(item, h, lease))
            if prepared is None:
                return
            if await self._send(item, h, lease, prepared):
                return
            log.info("the run changed while its call waited to be sent; building it again")
        raise Conflict(f"run {item.run_id} kept changing while its call waited to be sent")

    async def _send(
        self, item: Call, h: Handling, lease: str | None, prepared: PreparedCall
    ) -> bool:
        """Make the call and apply its outcome; False when the call was not sent because the
        run changed after its body was built (build it again)."""
        key = (item.run_id, item.target, item.attempt, item.seq)
        run, fn = prepared.run, prepared.fn
        step_name = run.step_names.get(item.target or "", "") if item.target else "discovery"
        # The span covers the call and making its outcome durable: one step attempt.
        with (
            run_span("step", run.run_id, call_attributes(run, item)) as span,
            structlog.contextvars.bound_contextvars(
                fn_id=run.fn_id, step=step_name, attempt=item.attempt
            ),
        ):
            # The call stays in flight here until its outcome is applied: a repeat of its record
            # handled in between would read the run as it was before the outcome, find the call
            # current, and send it again from that state (issue 13: the step ran twice, the
            # repeat reaching the app after the next call had handed it the stored output).
            try:
                headers = {
                    "x-run-id": run.run_id,
                    "x-inngest-server-kind": self._server_kind,
                    # -1 until the SDK has chosen; JS reads this header before the
                    # body's `version` (InngestCommHandler), so it must match it.
                    "x-inngest-req-version": str(run.req_version),
                    "x-inngest-step-id": item.target or "step",
                }
                url, body, method = (
                    call_url(step_url(fn.config) or "", run.fn_id, item.target),
                    prepared.body,
                    "POST",
                )
                endpoint = endpoint_request(fn.config, run.events)
                if endpoint is not None:
                    # A Durable Endpoint: its first request again, which the SDK takes for a
                    # call by its X-Run-ID and signature (empty unless signed), reading the
                    # run through the API (protocol/endpoint.py).
                    url, body, method = endpoint.url, endpoint.body, endpoint.method
                    headers["content-type"] = endpoint.content_type
                    headers["x-inngest-signature"] = ""
                    if run.disable_immediate:
                        headers["x-inngest-force-step-plan"] = "true"
                try:
                    outcome = await self._driver.call(
                        url,
                        body,
                        headers,
                        account_id=run.account_id,
                        before_send=lambda: self._check_unchanged(prepared),
                        method=method,
                    )
                except StaleCall:
                    span.set_attribute("headrace.call.stale", True)
                    return False
                finally:
                    self._unsent[run.run_id] -= 1
                    if self._unsent[run.run_id] <= 0:
                        del self._unsent[run.run_id]
                        self._written.pop(run.run_id, None)
                conflicts: frozenset[str] = frozenset()
                if outcome.ops:
                    outcome.ops = [
                        await self._make_request(op, prepared.memo_keys) for op in outcome.ops
                    ]
                    conflicts = await claim_signals(
                        self._stores, run, prepared.memo_keys, outcome.ops, self._clock.now_ms()
                    )
                if outcome.error is not None:
                    # The error's name and message only: its other fields can carry user data.
                    log.warning(
                        "app call failed",
                        status=outcome.status,
                        error_name=outcome.error.get("name"),
                        error_message=str(outcome.error.get("message") or "")[:300],
                    )
                else:
                    log.debug("app call", status=outcome.status, duration_ms=outcome.duration_ms)
                applied = await self._transact(
                    item.run_id,
                    lambda: self._apply_call(
                        item, h, fn, outcome, prepared.stack_len, lease, conflicts
                    ),
                )
            finally:
                self._in_flight.discard(key)
            observe_call(span, run, item, outcome, applied.out if applied else None)
        if applied is not None and applied.run.status in ENDED:
            with structlog.contextvars.bound_contextvars(fn_id=run.fn_id):
                log.info("run ended", status=applied.run.status)
            observe_run_end(applied.run)
        return True

    async def _make_request(self, op: Op, memo_keys: set[str]) -> Op:
        """step.ai.infer and step.fetch: headrace makes the request; the op then reads as a
        step.run that returned its response (or a step error)."""
        if op.id in memo_keys:
            return op
        if isinstance(op, AIGateway):
            return await self._driver.gateway(op)
        if isinstance(op, Gateway):
            return await self._driver.fetch(op)
        return op

    def _check_unchanged(self, prepared: PreparedCall) -> None:
        """As the call's first byte is about to leave: refuse to send a body built from a state
        older than one this executor has written since (a request can wait for a connection
        for seconds under load). Writes by other executors are fenced (see ownership.py)."""
        run = prepared.run
        if self._written.get(run.run_id, run.version) > run.version:
            raise StaleCall(f"run {run.run_id} changed since version {run.version}")

    async def _prepare_call(
        self, item: Call, h: Handling, lease: str | None
    ) -> PreparedCall | None:
        """The request body of the call, built from the run as stored now; None when there is
        no call to make (the record is stale, repeated, or the run's function is gone)."""
        key = (item.run_id, item.target, item.attempt, item.seq)
        found = await self._read(item.run_id, h)
        if found is None:
            await self._release(item, lease)
            return None
        run, memos = found
        if run.last_record == h.record_id:
            await self._outbox.publish(run)
            return None
        if key in self._in_flight:
            # The same call is running here already (or its outcome is being applied); its
            # lease is freed when it ends.
            return None
        fn = await self._stores.get_function(run.account_id, run.fn_id)
        machine = self._machine(run, set(memos), fn)
        if not machine.is_current_call(item):
            await self._release(item, lease)
            return None
        if fn is None or fn.archived:
            machine.fail(_gone(run.fn_id, fn))
            await self._commit(run, machine.out, h, release=lease)
            observe_run_end(run)
            return None
        body = build_body(
            run_id=run.run_id,
            fn_id=run.fn_id,
            events=run.events,
            memos=memos,
            stack=_stack_naming_every_memo(run, memos),
            attempt=machine.sdk_attempt(item),
            max_attempts=machine.max_attempts,
            target=item.target,
            disable_immediate=run.disable_immediate,
            version=run.req_version,
            queue_item=queue_item_id(item, h.partition, h.epoch),
        )
        self._in_flight.add(key)
        self._unsent[run.run_id] += 1
        self._written[run.run_id] = max(self._written.get(run.run_id, 0), run.version)
        return PreparedCall(run, fn, body, len(run.stack), set(memos))

    async def _apply_call(
        self,
        item: Call,
        h: Handling,
        fn: FunctionRecord,
        outcome: Outcome,
        stack_len: int,
        lease: str | None,
        signal_conflicts: frozenset[str],
    ) -> RunMachine | None:
        """Apply the call's outcome to the run as it is now; None when the call is stale."""
        found = await self._read(item.run_id, h)
        if found is None:
            await self._release(item, lease)
            return None
        fresh, memos = found
        machine = self._machine(fresh, set(memos), fn)
        if not machine.is_current_call(item):
            await self._release(item, lease)
            return None
        machine.apply_call(item, outcome, stack_len, signal_conflicts)
        await self._commit(fresh, machine.out, h, release=lease)
        return machine

    async def _release(self, item: Call, lease: str | None) -> None:
        if lease is not None:
            await self._outbox.release(item.account_id, lease)


class StaleCall(Exception):
    """A call not sent: its run changed after its body was built."""


def _stack_naming_every_memo(run: RunState, memos: dict[str, bytes]) -> list[str]:
    """The run's stack, with any stored memo it lacks put at its end: a stored step is always
    given to the app as done, never run again. Versioned writes keep the two in step, so a
    memo outside the stack is a broken invariant, and said loudly."""
    missing = sorted(set(memos) - set(run.stack))
    if not missing:
        return run.stack
    log.error("stored memos missing from the run's stack; given to the app as done", memos=missing)
    return [*run.stack, *missing]


def _gone(fn_id: str, fn: FunctionRecord | None) -> dict[str, str]:
    if fn is None:
        return {"name": "FunctionNotFound", "message": f"function {fn_id!r} is not synced"}
    return {
        "name": "FunctionArchived",
        "message": f"function {fn_id!r} was removed from its app at the last sync",
    }
