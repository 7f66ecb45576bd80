"""What the scheduler's flow gate keeps per partition, as the FlowStore holds it."""

from __future__ import annotations

import msgspec

from headrace.messages.flow import Slot


class Lease(msgspec.Struct, kw_only=True):
    lease_id: str
    slots: list[str]
    expires_ms: int


class Waiting(msgspec.Struct, kw_only=True):
    """An item held back by flow control: a call (for `slots`) or a run start (for a throttle)."""

    item_id: str
    queue: str
    order_ms: int
    seq: int
    record: bytes
    slots: list[Slot] = []
    throttle_key: str = ""
    emission_ms: float = 0.0
    capacity: int = 0
