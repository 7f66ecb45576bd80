"""Claiming the signals a call's WaitForSignal ops wait for (engine/signals.py), before the
machine applies the ops: a signal held by another run's live wait is a conflict, which fails the
run unless the op says `replace`.

The key is claimed before the run and its pause are written. A claim whose pause was never
written (the call's outcome was not applied) or is gone (resumed, timed out, its run ended) is
stale, and the next wait takes it over; the signal API answers "no run waits" for it.
"""

from __future__ import annotations

from headrace.core.errors import TransientError
from headrace.engine import signals
from headrace.messages.state import RunState
from headrace.ports.stores import Stores
from headrace.protocol import ops as opcodes
from headrace.protocol.ops import Op

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
        if op.op != opcodes.WAIT_FOR_SIGNAL or op.id in memo_keys or op.id in run.planned:
            continue
        wait = signals.read_wait(op.opts, now_ms)
        if isinstance(wait, str):
            continue  # the machine fails the step
        key = signals.signal_key(run.account_id, wait.signal)
        pause_id = f"{run.run_id}:{op.id}"
        ttl_ms = max(wait.expires_ms - now_ms, 0) + _GRACE_MS
        if not await _claim(stores, key, pause_id, ttl_ms, wait.replace, now_ms):
            conflicts.add(op.id)
    return frozenset(conflicts)


async def _claim(
    stores: Stores, key: str, pause_id: str, ttl_ms: int, replace: bool, now_ms: int
) -> bool:
    for _ in range(_ROUNDS):
        holder = await stores.claim(key, pause_id, ttl_ms, now_ms)
        if holder is None or holder == pause_id:
            return True
        held = await stores.get_pause(holder)
        if held is not None and held.expires_ms > now_ms and not replace:
            return False
        if await stores.swap(key, holder, pause_id, ttl_ms, now_ms):
            return True
    raise TransientError(f"claiming {key!r}: it kept changing hands")
