"""The fast path's decision: once a call's outcome is stored, whether the executor makes the
run's next call itself, at once, instead of sending it through the scheduler (`schedule`, the
flow gate, `work`).

It may when flow control has nothing to decide about that call:
- the transition asks for exactly one call of the run (several are a parallel fan-out, none a
  sleep, a wait or the end), due now and a first attempt (a retry waits for its backoff);
- the run holds its concurrency lease (a run that has none must get it from the scheduler; a
  run with no slots at all, whose function was gone at its start, is not gated);
- its function has no priority rule: among the calls waiting for a slot, which goes next is
  the scheduler's decision at every step. Throttle and rate limit apply to run starts only;
- the chain of calls made this way is within its bound, so a long run goes back to the queue
  now and then (its lease released, its next call waiting its turn) and cannot keep its slot,
  nor the executor's attention, from the other runs of its partition. The bound in time keeps
  the chain within the lease's life (the call timeout plus a 60 s margin, see
  `services/scheduler/service.py`): the chain's last call starts before `max_ms` and lasts at
  most the call timeout. It is half that margin, the other half left for the lease's way from
  the scheduler to the executor: a shorter bound sends loaded runs, whose steps are seconds
  apart because every run shares the cores, back through the scheduler after a step or two,
  which costs more CPU per step and slows every run further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from headrace.flow.config import priority_expression
from headrace.messages.records import Call, Enqueue
from headrace.messages.state import ENDED, RunState


@dataclass(frozen=True)
class ChainBound:
    """How long one chain of calls made in a row for a run may grow: `max_calls` calls (0: no
    fast path) or `max_ms` since it began."""

    max_calls: int = 50
    max_ms: int = 30_000


DEFAULT_BOUND = ChainBound()


@dataclass(frozen=True)
class Chain:
    """The calls one executor makes in a row for a run while handling one record (a Call, or
    the StartRun that creates the run), all under one lease (None: the run is not gated).
    `calls`: how many it has made."""

    lease: str | None
    began_ms: int
    calls: int

    def longer(self) -> Chain:
        return replace(self, calls=self.calls + 1)


@dataclass(frozen=True)
class Decision:
    """The call to make now, or None and why the scheduler gets the run back."""

    call: Call | None
    why: str


def next_call(
    schedule: Sequence[Enqueue],
    run: RunState,
    chain: Chain,
    config: dict[str, Any],
    bound: ChainBound,
    now_ms: int,
) -> Decision:
    """Decide for the transition `schedule` just stored for `run` (its records to schedule)."""
    if run.status in ENDED:
        return Decision(None, "the run ended")
    calls = [record for record in schedule if isinstance(record.item, Call)]
    if len(calls) != 1:
        return Decision(None, f"{len(calls)} calls to make")
    enqueue = calls[0]
    call = enqueue.item
    assert isinstance(call, Call)
    if call.run_id != run.run_id or enqueue.at_ms > now_ms or call.attempt != 0:
        return Decision(None, "the call is not a first attempt due now")
    if chain.lease is None and run.flow is not None and run.flow.slots:
        return Decision(None, "the run holds no concurrency lease")
    if priority_expression(config):
        return Decision(None, "the function has a priority rule")
    if chain.calls >= bound.max_calls or now_ms - chain.began_ms >= bound.max_ms:
        return Decision(None, "the chain reached its bound")
    return Decision(call, "inline")
