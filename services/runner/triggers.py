"""Which functions an event starts."""

from __future__ import annotations

import fnmatch
from typing import Any

from headrace.services.runner.invokes import invoked_fn_id

from headrace.engine import system_events
from headrace.expressions import ExpressionError, evaluate_bool
from headrace.messages.model import Event
from headrace.messages.state import FunctionRecord


def triggered(functions: list[FunctionRecord], event: Event) -> list[FunctionRecord]:
    """The functions `event` starts: the one an invoke names, else those whose triggers match."""
    if event.name == system_events.INVOKED:
        target = invoked_fn_id(event)
        return [fn for fn in functions if fn.fn_id == target and not fn.archived]
    return [fn for fn in functions if _matches(fn, event.payload)]


def _matches(fn: FunctionRecord, payload: dict[str, Any]) -> bool:
    """True when one of the function's event triggers matches: name (with `*` globs), then
    its expression over `event`."""
    name = payload.get("name")
    if fn.archived or not isinstance(name, str):
        return False
    for trigger in fn.config.get("triggers") or []:
        wanted = trigger.get("event") if isinstance(trigger, dict) else None
        if not isinstance(wanted, str):
            continue
        if wanted != name and not ("*" in wanted and fnmatch.fnmatchcase(name, wanted)):
            continue
        expression = trigger.get("expression")
        if not expression:
            return True
        try:
            if evaluate_bool(expression, {"event": payload}):
                return True
        except ExpressionError:
            # Refused at sync; a function synced before that check simply does not trigger.
            continue
    return False
