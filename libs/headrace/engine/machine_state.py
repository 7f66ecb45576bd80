"""What the run machine works on while it applies one event in a run's life (the run's state,
its memo keys, the clock, the run's settings, the effects collected in `out`), and the records
every part of it makes: history entries, timers, events, settled memos, deleted pauses."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from headrace.core.jsonutil import canonical
from headrace.engine import step_limit
from headrace.engine.transition import Transition
from headrace.messages.model import Event
from headrace.messages.records import Enqueue as EnqueueRecord
from headrace.messages.records import EventAccepted, PauseDeleted, WorkRecord
from headrace.messages.state import HistoryEntry, RunState
from headrace.protocol.ops import Op

# The key of the discovery call in the run's attempts (a step's is its hash).
DISCOVERY = ""
# The kinds of waiting step that have a pause, deleted when the step settles or the run ends.
PAUSED = frozenset({"wait", "invoke", "signal"})


class MachineState:
    """One application of the machine: the run it changes and the effects it collects."""

    def __init__(
        self,
        run: RunState,
        memo_keys: set[str],
        *,
        max_attempts: int,
        now_ms: int,
        new_id: Callable[[], str],
        rng: random.Random | None = None,
        retry_interval_ms: int | None = None,
        max_steps: int = step_limit.DEFAULT_MAX_STEPS,
    ) -> None:
        self.run = run
        self.memo_keys = set(memo_keys)
        self.max_attempts = max_attempts
        self.now_ms = now_ms
        self.new_id = new_id
        self.rng = rng
        # Every retry waits this long instead of Inngest's schedule (`--retry-interval`); an
        # app's Retry-After still wins, as in Inngest.
        self.retry_interval_ms = retry_interval_ms
        self.max_steps = max_steps
        # The WaitForSignal ops (by id) of the call being applied whose signal the executor
        # found held by another run's wait.
        self.signal_conflicts: frozenset[str] = frozenset()
        # When the call being applied was sent: the moment the waits it declares began.
        self.call_sent_ms = now_ms
        self.out = Transition()

    def pause_id(self, step_hash: str) -> str:
        return f"{self.run.run_id}:{step_hash}"

    def delete_pause(self, step_hash: str) -> None:
        pause_id = self.pause_id(step_hash)
        self.out.pauses_deleted.append(pause_id)
        self.out.events.append(PauseDeleted(account_id=self.run.account_id, pause_id=pause_id))

    def settle(self, step_hash: str, memo: Any, display: str) -> None:
        """The step is done for good: its memo is written and it leaves the plan."""
        self.out.memos[step_hash] = canonical(memo)
        self.memo_keys.add(step_hash)
        self.run.stack.append(step_hash)
        self.run.planned.pop(step_hash, None)
        self.run.attempts.pop(step_hash, None)
        self.run.wait_started_ms.pop(step_hash, None)
        if display:
            self.run.step_names.setdefault(step_hash, display)

    def emit_event(self, payload: dict[str, Any]) -> str:
        """Publish an event the run makes; its internal id."""
        internal_id = self.new_id()
        self.out.events.append(
            EventAccepted(
                event=Event(
                    internal_id=internal_id,
                    account_id=self.run.account_id,
                    name=payload["name"],
                    payload=payload,
                    received_ms=self.now_ms,
                )
            )
        )
        return internal_id

    def enqueue(self, item: WorkRecord, *, at_ms: int, timer_id: str) -> None:
        self.out.schedule.append(EnqueueRecord(timer_id=timer_id, item=item, at_ms=at_ms))

    def history(
        self,
        kind: str,
        *,
        op: Op | None = None,
        step_hash: str | None = None,
        attempt: int = 0,
        output: Any = None,
        error: Any = None,
        duration_ms: int = 0,
    ) -> None:
        step = op.id if op is not None else step_hash
        name = op.display if op is not None else (self.run.step_names.get(step) if step else None)
        self.out.history.append(
            HistoryEntry(
                entry_id=self.new_id(),
                run_id=self.run.run_id,
                ts_ms=self.now_ms,
                kind=kind,
                step_hash=step,
                step_name=name,
                attempt=attempt,
                duration_ms=duration_ms,
                output=output,
                error=error,
                input=op.input if op is not None else None,
            )
        )
