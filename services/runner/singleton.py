"""Singleton (`singleton: {key?, mode}`): one run at a time per function (and key value).

The partition's owner keeps, per (function, key value), a claim naming the run that holds the
slot. A new run takes the slot when the holder has ended, which is read from the run's status
when the next run asks (no bookkeeping at run end). A holder not in the run store yet is still
on its way to the executor, so it counts as running. `skip` drops the new run while the holder
runs; `cancel` cancels the holder and gives the slot to the new run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from headrace.core.clock import Clock
from headrace.expressions import EvaluationError, ExpressionError, compile_expression
from headrace.messages.state import ENDED, FunctionRecord
from headrace.ports.stores import Stores

MODES = ("skip", "cancel")
# Only collects slots: a slot whose holder ended is taken over whatever its expiry.
SLOT_TTL_MS = 400 * 86_400_000

Cancel = Callable[[str, str], Awaitable[None]]


class Singletons:
    def __init__(self, stores: Stores, clock: Clock, cancel: Cancel) -> None:
        self._stores = stores
        self._clock = clock
        self._cancel = cancel

    async def admit(self, fn: FunctionRecord, run_id: str, payload: dict[str, Any]) -> bool:
        """Whether run `run_id` may start; in `cancel` mode the holder is cancelled first."""
        config = fn.config.get("singleton")
        if not isinstance(config, dict):
            return True
        slot = _slot(fn, config, payload)
        if slot is None:
            return True
        now = self._clock.now_ms()
        holder = await self._stores.claim(slot, run_id, SLOT_TTL_MS, now)
        if holder is None or holder == run_id:
            return True
        run = await self._stores.get_run(holder)
        running = run is None or run.status not in ENDED
        if running and config.get("mode") != "cancel":
            return False
        if running:
            await self._cancel(fn.account_id, holder)
        if not await self._stores.swap(slot, holder, run_id, SLOT_TTL_MS, now):
            await self._stores.claim(slot, run_id, SLOT_TTL_MS, now)  # it had expired meanwhile
        return True


def _slot(fn: FunctionRecord, config: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """The slot's key; None when the key expression is false (Inngest: not a singleton)."""
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
