"""Claiming the signals a call's WaitForSignal ops wait for (engine/signals.py), before the
machine applies the ops: a signal held by another run's live wait is a conflict, which fails the
run unless the op says `replace`.

The key is claimed before the run and its pause are written: a claim whose pause is not
written yet still holds while its run may write it (engine/signals.py `wait_holds`), so the
first of two waits racing for a signal keeps it. One whose pause is gone (taken by a signal,
expired) or whose run ended or settled the step is stale, and the next wait takes it over.
"""

from __future__ import annotations

from headrace.core.errors import TransientError
from headrace.engine import signals
from headrace.messages.state import RunState
from headrace.ports.stores import Stores
from headrace.protocol.ops import Op, WaitForSignal

# The key outlives its wait by a day, so a late signal still finds the (expired) pause.
_GRACE_MS = 86_400_000
_ROUNDS = 5


async def claim_signals(
    stores: Stores, run: RunState, memo_keys: set[str], ops: list[Op], now_ms: int
) -> frozenset[str]:
    """Claim the signal of each new WaitForSignal op for its pause; the ids of the ops whose
    signal another run's wait holds (and that do not replace it)."""
    conflicts = set()
    for op in ops:
        if not isinstance(op, WaitForSignal) or op.id in memo_keys or op.id in run.planned:
            continue
        key = signals.signal_key(run.account_id, op.signal)
        pause_id = signals.pause_id(run.run_id, op.id)
        ttl_ms = max(op.expires_ms(now_ms) - now_ms, 0) + _GRACE_MS
        if not await _claim(stores, key, pause_id, ttl_ms, op.replace, now_ms):
            conflicts.add(op.id)
    return frozenset(conflicts)


async def _claim(
    stores: Stores, key: str, pause_id: str, ttl_ms: int, replace: bool, now_ms: int
) -> bool:
    for _ in range(_ROUNDS):
        holder = await stores.claim(key, pause_id, ttl_ms, now_ms)
        if holder is None or holder == pause_id:
            return True
        if not replace:
            pause = await stores.get_pause(holder)
            run = None if pause is not None else await stores.get_run(holder.partition(":")[0])
            if signals.wait_holds(holder, pause, run, now_ms):
                return False
        if await stores.swap(key, holder, pause_id, ttl_ms, now_ms):
            return True
    raise TransientError(f"claiming {key!r}: it kept changing hands")
