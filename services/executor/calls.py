"""A `Call` record: build the request from the run as stored, call the app, and apply the
outcome to the run as it is then. A call stays in flight from being built until its outcome is
applied; a call whose run this executor changed after the body was built is not sent, but built
again.

The fast path: when the stored outcome asks for one more call that flow control has nothing to
decide about (`flow.fast_path`), that call is made here at once, under the same lease, as part
of handling the same record; so are the calls after it, up to the chain's bound. Each outcome is
stored with the records of the slow path (the next call's Enqueue, the lease's release), which
are published only when the chain ends, or by the record handled again after a crash (the run's
last record is its own: `RunTransactions.repeated`), so no stored step is lost or run again."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from headrace.services.executor.app_gate import AppGate
from headrace.services.executor.observe import call_attributes, observe_call, observe_run_end
from headrace.services.executor.outbox import Outbox
from headrace.services.executor.runs import CONFLICT_ROUNDS, Handling, RunTransactions, gone

from headrace.core.clock import Clock
from headrace.core.errors import Conflict
from headrace.engine.machine import RunMachine
from headrace.engine.transition import Transition
from headrace.flow import fast_path
from headrace.flow.fast_path import Chain, ChainBound
from headrace.messages.flow import lease_id, schedule_key
from headrace.messages.records import Call, Resume, StartRun
from headrace.messages.state import ENDED, FunctionRecord, RunState
from headrace.obs.tracing import run_span
from headrace.ports.stores import Stores
from headrace.protocol.checkpoint import queue_item_id
from headrace.protocol.driver import AppDriver
from headrace.protocol.endpoint import endpoint_request
from headrace.protocol.ops import AIGateway, Gateway, Op, Outcome
from headrace.protocol.registration import step_url
from headrace.protocol.request import build_body, call_url
from headrace.runtime.signal_claims import claim_signals

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PreparedCall:
    run: RunState
    fn: FunctionRecord
    body: bytes
    stack_len: int  # the run's stack when the body was built
    memos: dict[str, bytes]  # the run's, at the version read
    memo_keys: set[str]


@dataclass(frozen=True)
class Written:
    """A run as this executor's write has just left it (at the version the write gave it),
    with its memos and its function's record: what the next call of a chain is built from,
    with no read. Another writer of the run meanwhile (an API cancellation, say) is found when
    that call's outcome is applied, as it would be when it came a moment after a read; the
    function's record is the chain's first, so a sync takes effect at the next chain, within
    the chain's bound."""

    run: RunState
    memos: dict[str, bytes]
    fn: FunctionRecord | None


@dataclass(frozen=True)
class Applied:
    machine: RunMachine
    next_call: Call | None  # to make at once, on the fast path
    written: Written | None  # what `next_call` is built from, when known without a read


@dataclass(frozen=True)
class Sent:
    next_call: Call | None  # to make at once, on the fast path
    written: Written | None


class StaleCall(Exception):
    """A call not sent: its run changed after its body was built."""


class Calls:
    def __init__(
        self,
        runs: RunTransactions,
        outbox: Outbox,
        stores: Stores,
        driver: AppDriver,
        gate: AppGate,
        clock: Clock,
        server_kind: str,
        bound: ChainBound,
    ) -> None:
        self._runs = runs
        self._gate = gate
        self._bound = bound
        self._outbox = outbox
        self._stores = stores
        self._driver = driver
        self._clock = clock
        self._server_kind = server_kind
        self._in_flight: set[tuple[str, str | None, int, int]] = set()
        # The leases held by the chains of calls running here, and how many chains hold each.
        self._chains: collections.Counter[str] = collections.Counter()

    async def call(self, item: Call, h: Handling) -> None:
        # A call the scheduler gated holds a lease until its outcome is stored; the calls made
        # after it on the fast path hold the same one.
        chain = Chain(lease=_own_lease(item), began_ms=self._clock.now_ms(), calls=1)
        with self.holding(chain.lease):
            sent = await self._call(item, h, chain, inline=False, written=None)
            if sent.next_call is not None:
                await self.follow(sent.next_call, h, chain, sent.written)

    async def follow(self, first: Call, h: Handling, chain: Chain, written: Written | None) -> None:
        """Make `first` at once, and the calls after it while the fast path allows, inside a
        `holding` of the chain's lease. `written`: the run as the write that asked for `first`
        left it, when known."""
        next_call: Call | None = first
        while next_call is not None:
            chain = chain.longer()
            sent = await self._call(next_call, h, chain, inline=True, written=written)
            next_call, written = sent.next_call, sent.written

    @contextlib.contextmanager
    def holding(self, lease: str | None) -> Iterator[None]:
        """A chain of calls holding `lease` runs here meanwhile: a duplicate of its record
        (the scheduler delivers a record again after a crash, with the lease it finds held)
        frees nothing, as the chain frees the lease when it ends."""
        if lease is None:
            yield
            return
        self._chains[lease] += 1
        try:
            yield
        finally:
            self._chains[lease] -= 1
            if not self._chains[lease]:
                del self._chains[lease]

    def decide(
        self, out: Transition, run: RunState, chain: Chain, fn: FunctionRecord | None
    ) -> Call | None:
        """The call of the transition to make at once (the fast path), or None."""
        config = fn.config if fn is not None else {}
        decision = fast_path.next_call(
            out.schedule, run, chain, config, self._bound, self._clock.now_ms()
        )
        if decision.call is None and chain.calls > 1:
            log.debug("fast path ends", why=decision.why, calls=chain.calls)
        return decision.call

    async def _call(
        self, item: Call, h: Handling, chain: Chain, *, inline: bool, written: Written | None
    ) -> Sent:
        """Make one call and apply its outcome; the call to make next on the fast path."""
        for _ in range(CONFLICT_ROUNDS):
            prepared = await self._runs.transact(
                item.run_id,
                lambda first, known=written: self._prepare(
                    item, h, chain, inline=inline, written=known if first else None
                ),
            )
            if prepared is None:
                return Sent(None, None)
            sent = await self._send(item, h, chain, prepared)
            if sent is not None:
                return sent
            written = None  # built again from the run as stored
            log.info("the run changed while its call waited to be sent; building it again")
        raise Conflict(f"run {item.run_id} kept changing while its call waited to be sent")

    async def _send(
        self, item: Call, h: Handling, chain: Chain, prepared: PreparedCall
    ) -> Sent | None:
        """Make the call and apply its outcome; None when the call was not sent because the
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
                # Calls at one position of one function's runs do about the same work.
                kind = f"{run.fn_id}:{item.target or prepared.stack_len}"
                try:
                    outcome = await self._gate.call(
                        url,
                        kind,
                        lambda: self._driver.call(
                            url,
                            body,
                            headers,
                            account_id=run.account_id,
                            before_send=lambda: self._check_unchanged(prepared),
                            method=method,
                        ),
                        after_wait=lambda: self._check_stored(prepared, h),
                    )
                except StaleCall:
                    span.set_attribute("headrace.call.stale", True)
                    return None
                finally:
                    self._runs.call_sent(run.run_id)
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
                applied = await self._runs.transact(
                    item.run_id,
                    lambda first: self._apply(
                        item, h, prepared, outcome, chain, conflicts, trusted=first
                    ),
                )
            finally:
                self._in_flight.discard(key)
            observe_call(span, run, item, outcome, applied.machine.out if applied else None)
        if applied is None:
            return Sent(None, None)
        if applied.machine.run.status in ENDED:
            with structlog.contextvars.bound_contextvars(fn_id=run.fn_id):
                log.info("run ended", status=applied.machine.run.status)
            observe_run_end(applied.machine.run)
        return Sent(applied.next_call, applied.written)

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
        if self._runs.written_since(run):
            raise StaleCall(f"run {run.run_id} changed since version {run.version}")

    async def _check_stored(self, prepared: PreparedCall, h: Handling) -> None:
        """After a wait for the app's turn, which may last seconds: refuse to send a body built
        from a state older than the one stored now, whoever wrote it (a newer owner of the
        partition, while this executor was paused, say: the read fences this one out)."""
        run = prepared.run
        stored = await self._runs.read_run(run.run_id, h)
        if stored is None or stored.version != run.version:
            raise StaleCall(f"run {run.run_id} changed since version {run.version}")

    async def _prepare(
        self, item: Call, h: Handling, chain: Chain, *, inline: bool, written: Written | None
    ) -> PreparedCall | None:
        """The request body of the call, built from the run as `written` left it or as stored
        now; None when there is no call to make (the record is stale, repeated, or the run's
        function is gone). An `inline` call follows the outcome this handling has just stored,
        which made the run's last record this one: that is no repeat."""
        key = (item.run_id, item.target, item.attempt, item.seq)
        if written is not None:
            run, memos, fn = written.run, written.memos, written.fn
        else:
            found = await self._runs.read(item.run_id, h)
            if found is None:
                await self.release(item, chain.lease)
                return None
            run, memos = found
            if not inline and await self._runs.repeated(run, h):
                return None
            fn = await self._stores.get_function(run.account_id, run.fn_id)
        if key in self._in_flight:
            # The same call is running here already (or its outcome is being applied), and
            # frees its lease when it ends; a chain holding another lease ends here.
            await self.release(item, chain.lease)
            return None
        memo_keys = set(memos)
        machine = self._runs.machine(run, memo_keys, fn)
        if not machine.is_current_call(item):
            await self.release(item, chain.lease)
            return None
        if fn is None or fn.archived:
            machine.fail(gone(run.fn_id, fn))
            await self._runs.commit(run, machine.out, h, release=chain.lease)
            observe_run_end(run)
            return None
        body = build_body(
            run_id=run.run_id,
            fn_id=run.fn_id,
            events=run.events,
            memos=memos,
            stack=_stack_naming_every_memo(run, memo_keys),
            attempt=machine.sdk_attempt(item),
            max_attempts=machine.max_attempts,
            target=item.target,
            disable_immediate=run.disable_immediate,
            version=run.req_version,
            queue_item=queue_item_id(item, h.partition, h.epoch),
        )
        self._in_flight.add(key)
        self._runs.call_built(run)
        return PreparedCall(run, fn, body, len(run.stack), memos, memo_keys)

    async def _apply(
        self,
        item: Call,
        h: Handling,
        prepared: PreparedCall,
        outcome: Outcome,
        chain: Chain,
        signal_conflicts: frozenset[str],
        *,
        trusted: bool,
    ) -> Applied | None:
        """Apply the call's outcome to the run as it is now, and decide whether the next call
        takes the fast path; None when the call is stale. `trusted`: apply it to the run the
        call was built from, unread (the machine changes that state in place), as the run's
        conditional write fails should anyone have written it since (a run from before versions,
        at 0, included: its write is conditional on having none), and the transaction's next
        round reads it."""
        built_from = prepared.run.version
        if trusted:
            fresh, memo_keys = prepared.run, set(prepared.memo_keys)
        else:
            found = await self._runs.read_memo_keys(item.run_id, h)
            if found is None:
                await self.release(item, chain.lease)
                return None
            fresh, memo_keys = found
        fn = prepared.fn
        machine = self._runs.machine(fresh, memo_keys, fn)
        if not machine.is_current_call(item):
            # Settled by this handling's own transition when the run's last record is this one:
            # an earlier write of this outcome timed out and was applied later (a Cassandra
            # lightweight transaction committed by the next write on the row, which then failed
            # its condition). Its effects were never made: make them. (The chain's earlier calls
            # share the record id, but the call after them was current when they were stored.)
            if not await self._runs.repeated(fresh, h):
                await self.release(item, chain.lease)
            return None
        machine.apply_call(item, outcome, prepared.stack_len, signal_conflicts)
        next_call = self.decide(machine.out, fresh, chain, fn)
        await self._runs.commit(fresh, machine.out, h, release=chain.lease, inline=next_call)
        written = None
        if next_call is not None and fresh.version == built_from + 1:
            # Written right after the version the call was built from: its memos are those
            # and the transition's.
            written = Written(fresh, {**prepared.memos, **machine.out.memos}, fn)
        return Applied(machine, next_call, written)

    async def release(self, item: Call | StartRun | Resume, lease: str | None) -> None:
        """Free a lease of `item`'s run outside a transition, unless another chain running here
        holds it (see `holding`): should both end this way, the lease expires, which errs on the
        safe side."""
        if lease is not None and self._chains[lease] <= 1:
            await self._outbox.release(
                item.account_id, schedule_key(item.account_id, item.flow), lease
            )


def _own_lease(item: Call) -> str | None:
    """The lease the scheduler gives this call when it gates it (None: it does not)."""
    if item.flow is None:
        return None
    return lease_id(item.run_id, item.target, item.seq, item.attempt)


def _stack_naming_every_memo(run: RunState, memo_keys: set[str]) -> list[str]:
    """The run's stack, with any stored memo it lacks put at its end: a stored step is always
    given to the app as done, never run again. Versioned writes keep the two in step, so a
    memo outside the stack is a broken invariant, and said loudly."""
    missing = sorted(memo_keys - set(run.stack))
    if not missing:
        return run.stack
    log.error("stored memos missing from the run's stack; given to the app as done", memos=missing)
    return [*run.stack, *missing]
