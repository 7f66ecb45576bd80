"""What an app answers to a call: the generator opcodes (protocol §3) and function results."""

from __future__ import annotations

from typing import Any

import msgspec

LEGACY_STEP = "Step"  # JS V0 executor; its data comes wrapped as {"data": ...}
STEP_RUN = frozenset({"StepRun", LEGACY_STEP})
STEP_ERROR = "StepError"
STEP_FAILED = "StepFailed"
STEP_PLANNED = "StepPlanned"
SLEEP = "Sleep"
WAIT_FOR_EVENT = "WaitForEvent"
WAIT_FOR_SIGNAL = "WaitForSignal"
INVOKE = "InvokeFunction"
RUN_COMPLETE = "RunComplete"
NONE = "None"
DISCOVERY = "DiscoveryRequest"
AI_GATEWAY = "AIGateway"
GATEWAY = "Gateway"  # step.fetch: headrace makes the request (protocol/gateway.py)
# Not an SDK opcode: what the executor puts in place of a Gateway or AIGateway op whose request
# got no usable answer. The SDK cannot run such a step when asked to; it reports the op again
# when the run is called again, so the machine retries it that way.
REQUEST_FAILED = "headrace:RequestFailed"


class Op(msgspec.Struct, kw_only=True):
    """One opcode of a 206 response. `opts` and `data` are free-form by design."""

    op: str
    id: str = ""
    name: str | None = None
    displayName: str | None = None
    opts: dict[str, Any] | None = None
    data: Any = None
    error: Any = None
    userland: dict[str, Any] | None = None
    # When the step ran, as the JS SDK reports it: {"a": start, "b": duration}, in nanoseconds.
    # Free-form, read only for the history: an odd value must not make the op unreadable.
    timing: Any = None

    @property
    def display(self) -> str:
        """The user-facing step id."""
        if self.userland and isinstance(self.userland.get("id"), str):
            return str(self.userland["id"])
        return self.displayName or self.name or self.id

    @property
    def duration_ms(self) -> int:
        took = self.timing.get("b") if isinstance(self.timing, dict) else None
        return int(took // 1_000_000) if isinstance(took, int | float) and took > 0 else 0


class Outcome(msgspec.Struct, kw_only=True):
    """The reading of one call, whatever went wrong on the way.

    - `ops` for a 206 (possibly empty), or
    - `done` with `result` for a function that returned, or
    - `error` (an object with name and message) for a failed call; `retryable` and
      `retry_after_ms` say whether and when to try again.
    """

    ops: list[Op] | None = None
    done: bool = False
    result: Any = None
    error: dict[str, Any] | None = None
    retryable: bool = True
    retry_after_ms: int | None = None
    request_version: int | None = None
    status: int = 0
    duration_ms: int = 0
