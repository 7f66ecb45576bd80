"""`step.invoke` seen from the runner: the invoked function is named in the `inngest/function.
invoked` event; the invoking run's step is settled by the invoked run's `inngest/function.
finished` event, through the invoke's pause."""

from __future__ import annotations

from typing import Any

from headrace.core.ids import new_ulid
from headrace.engine import system_events
from headrace.messages.model import Event


def invoked_fn_id(event: Event) -> str | None:
    """The function an `inngest/function.invoked` event starts."""
    meta = _invoke_meta(event)
    target = meta.get("fn_id")
    return target if isinstance(target, str) else None


def not_found_event(event: Event, now_ms: int) -> Event | None:
    """As Inngest's runner: a `step.invoke` of a function that does not exist (or no longer)
    ends at once, with the invoking step failed by the `function.finished` event it waits
    for, whose error names the function (pkg/execution/runner/runner.go,
    FindInvokedFunction; pkg/execution/executor/util.go, CreateInvokeFailedEvent). None when
    the invoke carries no correlation id, so nothing waits for it."""
    meta = _invoke_meta(event)
    correlation = meta.get("correlation_id")
    if not isinstance(correlation, str):
        return None
    internal_id = new_ulid(now_ms)
    return Event(
        internal_id=internal_id,
        account_id=event.account_id,
        name=system_events.FINISHED,
        payload={
            "name": system_events.FINISHED,
            "id": internal_id,
            "ts": now_ms,
            "data": {
                "function_id": "",
                "run_id": "",
                "correlation_id": correlation,
                "error": {
                    "name": "Error",
                    "message": f"could not find function with ID: {meta.get('fn_id')}",
                },
            },
        },
        received_ms=now_ms,
    )


def invoke_result(payload: dict[str, Any]) -> dict[str, Any]:
    """What an invoke's step gets from the invoked run's `function.finished` event: its result,
    or its error."""
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


def _invoke_meta(event: Event) -> dict[str, Any]:
    meta = (event.payload.get("data") or {}).get("_inngest") or {}
    return meta if isinstance(meta, dict) else {}
