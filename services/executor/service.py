"""The executor's record handler: start runs, call apps (`calls.py`), apply outcomes, resume
and cancel; each record read, decided and written as one run transaction (`runs.py`)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import structlog
from headrace.services.executor.app_gate import AppGate
from headrace.services.executor.calls import Calls, Written
from headrace.services.executor.observe import observe_run_end, observe_wait
from headrace.services.executor.outbox import Outbox
from headrace.services.executor.runs import Handling, RunTransactions, gone

from headrace.core.clock import Clock
from headrace.core.errors import Conflict, Fenced
from headrace.engine.machine import RunMachine
from headrace.engine.replay import Seed, replay_seed
from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.flow.fast_path import DEFAULT_BOUND, Chain, ChainBound
from headrace.messages.flow import lease_id, resume_lease_id
from headrace.messages.records import (
    WORK_CODEC,
    Call,
    CancelRun,
    EndpointTimeout,
    Resume,
    StartRun,
    WorkRecord,
)
from headrace.messages.state import ENDED, RunState
from headrace.messages.topics import Topics
from headrace.obs.metrics import run_started
from headrace.ports.log import Log, LogRecord
from headrace.ports.stores import Stores
from headrace.protocol.driver import AppDriver
from headrace.runtime.ownership import Ownership


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
        rng: random.Random | None = None,
        retry_interval_ms: int | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        fast_path: ChainBound = DEFAULT_BOUND,
        app_gate: AppGate | None = None,
    ) -> None:
        """`fast_path`: how many calls a run may make in a row without the scheduler;
        `app_gate`: how many calls each app is sent at once (by default, up to 200)."""
        self._stores = stores
        self._clock = clock
        self._outbox = outbox = Outbox(log_port, topics, stores)
        self._ownership = Ownership(stores, clock)
        self._runs = RunTransactions(
            stores,
            outbox,
            self._ownership,
            clock,
            rng=rng,
            retry_interval_ms=retry_interval_ms,
            max_steps=max_steps,
        )
        gate = app_gate or AppGate(clock)
        self._calls = Calls(self._runs, outbox, stores, driver, gate, clock, server_kind, fast_path)

    async def on_assigned(self, partitions: set[int]) -> None:
        await self._ownership.on_assigned(partitions)

    async def on_revoked(self, partitions: set[int]) -> None:
        await self._ownership.on_revoked(partitions)

    async def handle(self, record: LogRecord) -> None:
        item = WORK_CODEC.decode(record.value)
        with structlog.contextvars.bound_contextvars(
            account_id=item.account_id, run_id=item.run_id
        ):
            epoch = self._ownership.epoch(record.partition)
            if epoch is None:
                raise Fenced(f"partition {record.partition} is not this executor's")
            handling = Handling(record.partition, f"{record.partition}:{record.offset}", epoch)
            try:
                await self._handle(item, handling)
            except BaseException:
                # The record is handled again; an error of the history write would hide this.
                with contextlib.suppress(Exception):
                    await self._outbox.history_written(item.run_id)
                raise
            # The record is done once every effect it made is durable.
            await self._outbox.history_written(item.run_id)

    async def _handle(self, item: WorkRecord, h: Handling) -> None:
        match item:
            case StartRun():
                await self._start(item, h)
            case Call():
                await self._calls.call(item, h)
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

    async def _start(self, item: StartRun, h: Handling) -> None:
        """Create the run, and make its first call at once when the start brought that call's
        lease (the fast path; see calls.py). Without one, the call goes through the scheduler,
        which gates it as it gates any call."""
        # The first call's lease, which a start delivered again after a crash may hold anew.
        lease = lease_id(item.run_id, None, 0, 0) if item.leased else None
        chain = Chain(lease=lease, began_ms=self._clock.now_ms(), calls=0)
        with self._calls.holding(lease):
            started = await self._create(item, h, chain)
            if started is None:
                return
            first_call, written = started
            run = written.run
            run_started(run.fn_id)
            if run.status in ENDED:
                observe_run_end(run)
            if first_call is not None:
                await self._calls.follow(first_call, h, chain, written)

    async def _create(
        self, item: StartRun, h: Handling, chain: Chain
    ) -> tuple[Call | None, Written] | None:
        """The first call when the fast path makes it, and the run as created; None when the
        run existed already."""
        seed = await self._replay_seed(item)

        async def step(first: bool) -> tuple[Call | None, Written] | None:
            # First, the run is taken not to exist (a start is seldom delivered twice): the
            # creation's condition finds one that does, and the next round reads it.
            found = None if first else await self._runs.read_memo_keys(item.run_id, h)
            if found is not None:
                if not await self._runs.repeated(found[0], h, creates=True):
                    # Another record started it: this one's lease is not the run's to use.
                    await self._calls.release(item, chain.lease)
                return None
            fn = item.function or await self._stores.get_function(item.account_id, item.fn_id)
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
            machine = self._runs.machine(run, set(), fn)
            machine.start()
            if seed is not None:
                machine.seed(seed.stack, seed.memos, seed.step_names)
            if item.original_run_id:
                # A rerun is listed with the runs of its trigger events, after the original.
                for event_id in item.event_ids:
                    await self._stores.link_run(event_id, item.run_id)
            if fn is None or fn.archived:
                machine.fail(gone(item.fn_id, fn))
            # Only a start the scheduler admitted with the first call's lease makes it here.
            first_call = self._calls.decide(machine.out, run, chain, fn) if item.leased else None
            ended = run.status in ENDED
            release = chain.lease if ended else None
            if not await self._runs.commit(
                run, machine.out, h, create=True, release=release, inline=first_call
            ):
                raise Conflict(f"run {item.run_id} was created meanwhile")
            return first_call, Written(run, machine.out.memos, fn)

        return await self._runs.transact(item.run_id, step)

    async def _resume(self, item: Resume, h: Handling) -> None:
        """End the step's wait; when the scheduler gave the resume the lease of the call after
        it, make that call at once (the fast path, see calls.py), as a leased start does."""
        lease = resume_lease_id(item.run_id, item.step_hash) if item.leased else None
        chain = Chain(lease=lease, began_ms=self._clock.now_ms(), calls=0)
        leased = (item, chain) if lease is not None else None
        waited: dict[str, tuple[str, int]] = {}

        def apply(machine: RunMachine) -> None:
            waited.clear()
            kind = machine.run.planned.get(item.step_hash)
            since = machine.run.wait_started_ms.get(item.step_hash)
            if kind is not None and since is not None:
                waited[kind] = (item.step_hash, since)
            machine.apply_resume(item)

        with self._calls.holding(lease):
            settled = await self._settle(
                item.run_id, h, lambda m: m.is_current_resume(item), apply, leased
            )
            if settled is None:
                return
            run, next_call = settled
            for kind, (step_hash, since) in waited.items():
                observe_wait(run, step_hash, kind, since, self._clock.now_ms())
            if next_call is not None:
                await self._calls.follow(next_call, h, chain, None)

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
        leased: tuple[Resume, Chain] | None = None,
    ) -> tuple[RunState, Call | None] | None:
        """Apply a change to the run; return the run when it was applied (and committed), and
        the call to make at once when `leased` (a resume that took the lease of the call after
        it, and the chain that lease begins) allows the fast path. The lease is freed when there
        is no such call."""
        item, chain = leased if leased is not None else (None, None)

        async def let_go() -> None:
            if item is not None and chain is not None:
                await self._calls.release(item, chain.lease)

        async def step(first: bool) -> tuple[RunState, bool, Call | None] | None:
            found = await self._runs.read_memo_keys(run_id, h)
            if found is None:
                await let_go()
                return None
            run, memo_keys = found
            if await self._runs.repeated(run, h):
                return None
            fn = await self._stores.get_function(run.account_id, run.fn_id)
            machine = self._runs.machine(run, memo_keys, fn)
            if not is_current(machine):
                await let_go()
                return None
            was_ended = run.status in ENDED
            apply(machine)
            next_call = None
            if chain is not None:
                next_call = self._calls.decide(machine.out, run, chain, fn)
            release = chain.lease if chain is not None else None
            await self._runs.commit(run, machine.out, h, release=release, inline=next_call)
            return run, was_ended, next_call

        settled = await self._runs.transact(run_id, step)
        if settled is None:
            return None
        run, was_ended, next_call = settled
        if run.status in ENDED and not was_ended:
            observe_run_end(run)
        return run, next_call
