"""Singleton (`singleton: {key?, mode}`) at every run start, handled on the KeyStore: the run
claims its slot, the holder's status is read when another run holds it, `flow.singleton`
decides, and a takeover is a compare-and-set (`KeyStore.swap`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from headrace.core.clock import Clock
from headrace.flow.runner_effects import CancelHolder, TakeSlot
from headrace.flow.singleton import SINGLETON_RUNNING, SLOT_TTL_MS, admit_run, singleton_slot
from headrace.messages.state import FunctionRecord
from headrace.ports.stores import Stores

# Cancel a run of this function.
Cancel = Callable[[FunctionRecord, str], Awaitable[None]]


class Singletons:
    def __init__(self, stores: Stores, clock: Clock, cancel: Cancel) -> None:
        self._stores = stores
        self._clock = clock
        self._cancel = cancel

    async def admit(self, fn: FunctionRecord, run_id: str, payload: dict[str, Any]) -> bool:
        """Whether run `run_id` may start; in `cancel` mode the holder is cancelled first."""
        slot = singleton_slot(fn, payload)
        if slot is None:
            return True
        now = self._clock.now_ms()
        holder = await self._stores.claim(slot, run_id, SLOT_TTL_MS, now)
        status = None
        if holder is not None and holder != run_id:
            run = await self._stores.get_run(holder)
            status = run.status if run is not None else None
        effects = admit_run(fn, slot, run_id, holder, status)
        for effect in effects:
            match effect:
                case CancelHolder(run_id=running):
                    await self._cancel(fn, running)
                case TakeSlot(slot=taken, holder=previous):
                    if not await self._stores.swap(taken, previous, run_id, SLOT_TTL_MS, now):
                        # It had expired meanwhile.
                        await self._stores.claim(taken, run_id, SLOT_TTL_MS, now)
        return SINGLETON_RUNNING not in effects
