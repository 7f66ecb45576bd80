"""Singleton (`singleton: {key?, mode}`): one run at a time per function (and key value).

A slot per (function, key value) names the run that holds it (a KeyStore claim). A new run
takes the slot when the holder has ended, which is read from the run's status when the next run
asks (no bookkeeping at run end). A holder not in the run store yet is still on its way to the
executor, so it counts as running. `skip` drops the new run while the holder runs; `cancel`
cancels the holder and gives the slot to the new run.
"""

from __future__ import annotations

from typing import Any

from headrace.expressions import EvaluationError, ExpressionError, compile_expression
from headrace.flow.runner_effects import CancelHolder, SingletonEffect, Skip, TakeSlot
from headrace.messages.state import ENDED, FunctionRecord

# Only collects slots: a slot whose holder ended is taken over whatever its expiry.
SLOT_TTL_MS = 400 * 86_400_000

SINGLETON_RUNNING = Skip("singleton running")


def singleton_slot(fn: FunctionRecord, payload: dict[str, Any]) -> str | None:
    """The slot's key; None when `fn` is no singleton, or its key expression is false for this
    event (Inngest: not a singleton then)."""
    config = fn.config.get("singleton")
    if not isinstance(config, dict):
        return None
    expression = config.get("key")
    value: object = ""
    if isinstance(expression, str) and expression:
        try:
            value = compile_expression(expression).evaluate({"event": payload})
        except (ExpressionError, EvaluationError):
            value = "<invalid>"
        if value is False:
            return None
    return f"singleton:{fn.account_id}:{fn.fn_id}:{value}"


def admit_run(
    fn: FunctionRecord, slot: str, run_id: str, holder: str | None, holder_status: str | None
) -> list[SingletonEffect]:
    """Run `run_id` against the slot's holder (None: the run's claim took the free slot; the
    holder's status None: not in the run store yet): admitted, skipped, or given the slot (the
    holder cancelled first when running in `cancel` mode)."""
    if holder is None or holder == run_id:
        return []
    running = holder_status is None or holder_status not in ENDED
    if not running:
        return [TakeSlot(slot, holder)]
    config = fn.config.get("singleton")
    if isinstance(config, dict) and config.get("mode") == "cancel":
        return [CancelHolder(holder), TakeSlot(slot, holder)]
    return [SINGLETON_RUNNING]
