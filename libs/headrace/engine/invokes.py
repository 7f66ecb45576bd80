"""step.invoke: the run starts another function with an `inngest/function.invoked` event and
waits for that run's `inngest/function.finished`, matched by their correlation id."""

from __future__ import annotations

from typing import Any

from headrace.engine import system_events
from headrace.engine.machine_state import MachineState
from headrace.engine.waits import add_pause, begin_wait, new_pause
from headrace.protocol.ops import InvokeFunction

# The memo of an invoke whose run did not finish in time.
INVOKE_TIMEOUT = {
    "error": {
        "name": "InngestInvokeTimeoutError",
        "message": "Timed out waiting for invoked function to complete",
    }
}


def invoke(state: MachineState, op: InvokeFunction) -> None:
    run = state.run
    if op.id in run.planned:
        return
    function_id = op.opts.function_id
    payload = op.opts.payload
    correlation = f"{run.run_id}.{op.id}"
    expires = state.now_ms + op.timeout_ms
    detail = {"function_id": function_id, "correlation_id": correlation}
    begin_wait(state, op, "invoke", "step.invoking", detail, expires, INVOKE_TIMEOUT, "timeout")
    expression = f"async.data.correlation_id == {_cel_string(correlation)}"
    add_pause(
        state,
        new_pause(state, op, "invoke", system_events.FINISHED, expression, expires, correlation),
    )
    data = payload.data if payload is not None and payload.data is not None else {}
    invoked: dict[str, Any] = {
        "name": system_events.INVOKED,
        "id": correlation,
        "ts": state.now_ms,
        "data": {
            **data,
            "_inngest": {
                "fn_id": function_id,
                "correlation_id": correlation,
                "expire": expires,
                "source_fn_id": run.fn_id,
                "source_run_id": run.run_id,
            },
        },
    }
    if payload is not None and payload.user is not None:
        invoked["user"] = payload.user
    state.emit_event(invoked)


def _cel_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
