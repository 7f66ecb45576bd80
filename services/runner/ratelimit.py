"""Rate limits (`rateLimit`), decided by the runner when an event triggers a function: an event
over the limit starts no run. One GCRA state per key, kept in memory by the owner of the
account's partition and written to the FlowStore on every admission, so a new owner reloads it.
"""

from __future__ import annotations

import msgspec

from headrace.core.clock import Clock
from headrace.flow.config import rate_limit
from headrace.messages.model import Event
from headrace.messages.state import FunctionRecord
from headrace.ports.stores import Stores

KIND = "ratelimit"

_enc = msgspec.msgpack.Encoder()
_float_dec = msgspec.msgpack.Decoder(float)


class RateLimiter:
    def __init__(self, stores: Stores, clock: Clock) -> None:
        self._stores = stores
        self._clock = clock
        self._tats: dict[str, tuple[int, float]] = {}

    async def allow(self, fn: FunctionRecord, event: Event, partition: int) -> bool:
        """Whether `event` may start a run of `fn`; True when `fn` has no rate limit."""
        limit = rate_limit(fn.account_id, fn.fn_id, fn.config, event.payload)
        if limit is None:
            return True
        key, gcra = limit
        found = self._tats.get(key)
        admitted, tat = gcra.admit(found[1] if found else None, self._clock.now_ms())
        if admitted:
            await self._stores.put_flow(partition, KIND, key, _enc.encode(tat))
            self._tats[key] = (partition, tat)
        return admitted

    async def own(self, partitions: set[int]) -> None:
        now = self._clock.now_ms()
        for partition in partitions:
            for key, body in await self._stores.flow_entries(partition, KIND):
                tat = _float_dec.decode(body)
                if tat <= now:
                    # Past: the same as never seen, so it need not be kept.
                    await self._stores.delete_flow(partition, KIND, key)
                else:
                    self._tats[key] = (partition, tat)

    def release(self, partitions: set[int]) -> None:
        for key, (partition, _) in list(self._tats.items()):
            if partition in partitions:
                del self._tats[key]
