"""What an app answers to a call: the generator opcodes (protocol §3) and function results.

Each opcode is decoded once, where it comes in (a 206 answer, a checkpoint), into its own typed
struct with its options checked (`decode_ops`), as Inngest's `state/opcode.go` gives each opcode
typed accessors (`SleepDuration`, `WaitForEventOpts`, `SignalOpts`, `InvokeFunctionOpts`...). An
op whose options cannot be read becomes an `InvalidOp` saying which op and why: its step fails
with that error, and the other ops of the answer are applied as usual.
"""

from __future__ import annotations

from typing import Any

import msgspec

from headrace.core.durations import DurationError, parse_deadline_ms, parse_duration_ms

# A wait for a signal without a timeout waits a year (state/opcode.go `SignalOpts.Expires`);
# an invoke too (Inngest's default invoke timeout).
DEFAULT_SIGNAL_TIMEOUT_MS = 365 * 86_400_000
DEFAULT_INVOKE_TIMEOUT_MS = 365 * 86_400_000


class _Common(msgspec.Struct, kw_only=True):
    """What every op carries, whatever its opcode."""

    id: str = ""
    name: str | None = None
    displayName: str | None = None
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

    @property
    def input(self) -> list[Any] | None:
        """The arguments a step was given (`step.run(id, fn, ...input)`), for the history."""
        return None

    def common(self) -> dict[str, Any]:
        """The fields to carry over to an op standing for this one."""
        return {
            "id": self.id,
            "name": self.name,
            "displayName": self.displayName,
            "userland": self.userland,
        }


class Envelope(_Common, kw_only=True):
    """An op read only as far as its opcode: what must be right for the answer to be read."""

    op: str


class _Op(_Common, kw_only=True, tag_field="op"):
    @property
    def opcode(self) -> str:
        return str(type(self).__struct_config__.tag)


class StepOpts(msgspec.Struct, kw_only=True):
    input: Any = None
    parallelMode: str | None = None


class _StepOp(_Op, kw_only=True):
    opts: StepOpts | None = None

    @property
    def input(self) -> list[Any] | None:
        step_input = self.opts.input if self.opts is not None else None
        return step_input if isinstance(step_input, list) else None


class StepRun(_StepOp, kw_only=True, tag="StepRun"):
    data: Any = None


class LegacyStep(_StepOp, kw_only=True, tag="Step"):
    """JS's V0 executor: its data comes wrapped as {"data": ...}."""

    data: Any = None


class StepError(_StepOp, kw_only=True, tag="StepError"):
    error: Any = None


class StepFailed(_StepOp, kw_only=True, tag="StepFailed"):
    error: Any = None


class StepPlanned(_StepOp, kw_only=True, tag="StepPlanned"):
    @property
    def race(self) -> bool:
        return self.opts is not None and self.opts.parallelMode == "race"


class SleepOpts(msgspec.Struct, kw_only=True):
    duration: str | None = None


class Sleep(_Op, kw_only=True, tag="Sleep"):
    opts: SleepOpts | None = None

    def __post_init__(self) -> None:
        self.until_ms(0)

    def until_ms(self, now_ms: int) -> int:
        """A duration from now or an ISO date, in `opts.duration` or (JS 1.x/2.x) the name."""
        spec = self.opts.duration if self.opts is not None else None
        return parse_deadline_ms(spec if spec is not None else self.name or "", now_ms)


class WaitForEventOpts(msgspec.Struct, kw_only=True):
    event: str | None = None
    if_: str | None = msgspec.field(default=None, name="if")
    timeout: str | None = None


class WaitForEvent(_Op, kw_only=True, tag="WaitForEvent"):
    opts: WaitForEventOpts | None = None

    def __post_init__(self) -> None:
        if not self.event:
            raise ValueError("waitForEvent needs an event name")
        _ = self.timeout_ms

    @property
    def event(self) -> str:
        """The event in `opts.event` or (Python, JS 1.x/2.x) the name."""
        return (self.opts.event if self.opts is not None else None) or self.name or ""

    @property
    def expression(self) -> str | None:
        return (self.opts.if_ if self.opts is not None else None) or None

    @property
    def timeout_ms(self) -> int:
        timeout = self.opts.timeout if self.opts is not None else None
        return parse_duration_ms(timeout or "")


class WaitForSignalOpts(msgspec.Struct, kw_only=True):
    signal: str = ""
    timeout: str | None = None
    conflict: str | None = None


class WaitForSignal(_Op, kw_only=True, tag="WaitForSignal"):
    """A signal is held by one wait at a time: a second wait for it fails its run (`conflict`
    "fail", the default) or takes it over ("replace")."""

    opts: WaitForSignalOpts = msgspec.field(default_factory=WaitForSignalOpts)

    def __post_init__(self) -> None:
        if not self.opts.signal:
            raise ValueError("waitForSignal needs a signal name")
        if self.opts.conflict not in (None, "", "fail", "replace"):
            raise ValueError(
                f"waitForSignal's onConflict must be 'fail' or 'replace', "
                f"not {self.opts.conflict!r}"
            )
        self.expires_ms(0)

    @property
    def signal(self) -> str:
        return self.opts.signal

    @property
    def replace(self) -> bool:
        return self.opts.conflict == "replace"

    def expires_ms(self, now_ms: int) -> int:
        if not self.opts.timeout:
            return now_ms + DEFAULT_SIGNAL_TIMEOUT_MS
        return parse_deadline_ms(self.opts.timeout, now_ms)


class InvokePayload(msgspec.Struct, kw_only=True):
    data: dict[str, Any] | None = None
    user: dict[str, Any] | None = None


class InvokeOpts(msgspec.Struct, kw_only=True):
    function_id: str = ""
    payload: InvokePayload | None = None
    timeout: str | None = None


class InvokeFunction(_Op, kw_only=True, tag="InvokeFunction"):
    opts: InvokeOpts = msgspec.field(default_factory=InvokeOpts)

    def __post_init__(self) -> None:
        if not self.opts.function_id:
            raise ValueError("invoke needs a function_id")
        _ = self.timeout_ms

    @property
    def timeout_ms(self) -> int:
        timeout = self.opts.timeout
        return parse_duration_ms(timeout) if timeout else DEFAULT_INVOKE_TIMEOUT_MS


class AIGatewayOpts(msgspec.Struct, kw_only=True):
    """step.ai.infer's request (protocol/ai_gateway.py)."""

    url: str | None = None
    auth_key: str | None = None
    format: str | None = None
    headers: dict[str, str] | None = None
    body: Any = None


class AIGateway(_Op, kw_only=True, tag="AIGateway"):
    opts: AIGatewayOpts | None = None


class FetchOpts(msgspec.Struct, kw_only=True):
    """step.fetch's request (protocol/gateway.py)."""

    url: str | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    body: Any = None


class Gateway(_Op, kw_only=True, tag="Gateway"):
    """step.fetch: headrace makes the request (protocol/gateway.py)."""

    opts: FetchOpts | None = None


class RunComplete(_Op, kw_only=True, tag="RunComplete"):
    data: Any = None


class NoOp(_Op, kw_only=True, tag="None"):
    pass


class DiscoveryRequest(_Op, kw_only=True, tag="DiscoveryRequest"):
    pass


class RequestFailed(_Op, kw_only=True, tag="headrace:RequestFailed"):
    """Not an SDK opcode: what the executor puts in place of a Gateway or AIGateway op whose
    request got no usable answer. The SDK cannot run such a step when asked to; it reports the
    op again when the run is called again, so the machine retries it that way."""

    error: Any = None


class InvalidOp(_Common, kw_only=True):
    """An op that cannot be run: an unknown opcode, or options that cannot be read."""

    opcode: str
    reason: str

    @property
    def error(self) -> dict[str, str]:
        return invalid_error(self.opcode, self.display, self.reason)


def invalid_error(opcode: str, display: str, reason: str) -> dict[str, str]:
    """The error of a step whose op cannot be run: its memo, thrown by the SDK."""
    return {"name": "InvalidOpcode", "message": f"{opcode[:100]} op {display!r}: {reason}"}


_Tagged = (
    StepRun
    | LegacyStep
    | StepError
    | StepFailed
    | StepPlanned
    | Sleep
    | WaitForEvent
    | WaitForSignal
    | InvokeFunction
    | AIGateway
    | Gateway
    | RunComplete
    | NoOp
    | DiscoveryRequest
)
_SDK_OPCODES = frozenset(str(kind.__struct_config__.tag) for kind in _Tagged.__args__)
Op = _Tagged | RequestFailed | InvalidOp
STEP_RUN = (StepRun, LegacyStep)
# The ops that stand for no step, and so need no id.
WITHOUT_STEP = (NoOp, DiscoveryRequest, RunComplete)


def decode_op(item: Any) -> Op:
    """One op as an app sent it (JSON as Python values). Raises msgspec.ValidationError for an
    op that cannot even be told apart (no opcode, fields of the wrong type), which makes the
    whole answer unreadable; an op with options that cannot be read is an InvalidOp."""
    envelope = msgspec.convert(item, Envelope)
    common = envelope.common() | {"timing": envelope.timing}
    if envelope.op not in _SDK_OPCODES:
        return InvalidOp(opcode=envelope.op, reason="headrace does not run this opcode", **common)
    try:
        return msgspec.convert(item, _Tagged)
    except (msgspec.ValidationError, DurationError) as err:
        return InvalidOp(opcode=envelope.op, reason=str(err), **common)


def decode_ops(items: list[Any]) -> list[Op]:
    return [decode_op(item) for item in items]


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
