"""`cancelOn`: each entry becomes a pause of kind `cancel` when the run starts; an event that
matches it (in the pause index, as a wait's) cancels the run."""

from __future__ import annotations

from typing import Any

import structlog

from headrace.core.durations import DurationError, parse_duration_ms
from headrace.expressions import ExpressionError, substitute_event
from headrace.flow.config import flow_key
from headrace.messages.model import Event, Pause
from headrace.messages.state import FunctionRecord

log = structlog.get_logger(__name__)

DEFAULT_CANCEL_TIMEOUT_MS = 365 * 86_400_000


def cancel_pauses(fn: FunctionRecord, run_id: str, events: list[Event], now_ms: int) -> list[Pause]:
    """The cancel pauses of a run of `fn` started by `events`; an entry whose expression or
    timeout cannot be read is skipped."""
    pauses = []
    for index, cancel in enumerate(fn.config.get("cancel") or []):
        pause = _cancel_pause(fn, run_id, index, cancel, events, now_ms)
        if pause is not None:
            pauses.append(pause)
    return pauses


def _cancel_pause(
    fn: FunctionRecord,
    run_id: str,
    index: int,
    cancel: dict[str, Any],
    events: list[Event],
    now: int,
) -> Pause | None:
    expression = cancel.get("if") or None
    try:
        if expression is not None:
            expression = substitute_event(str(expression), events[0].payload)
        timeout = cancel.get("timeout")
        timeout_ms = parse_duration_ms(str(timeout)) if timeout else DEFAULT_CANCEL_TIMEOUT_MS
    except (ExpressionError, DurationError) as err:
        # Not str(err): an expression error quotes the expression, with the event's values in it.
        reason = err.message if isinstance(err, ExpressionError) else str(err)
        log.warning("cancelOn entry skipped", fn_id=fn.fn_id, index=index, error=reason)
        return None
    return Pause(
        pause_id=f"{run_id}:cancel:{index}",
        account_id=fn.account_id,
        run_id=run_id,
        fn_id=fn.fn_id,
        kind="cancel",
        event_name=str(cancel.get("event")),
        expression=expression,
        expires_ms=now + timeout_ms,
        since_ms=max(event.received_ms for event in events),
        flow_key=flow_key(fn.account_id, fn.fn_id, fn.config),
    )
