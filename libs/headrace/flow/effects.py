"""What a flow decision asks of the scheduler, in the order it must be done.

The handler makes each effect durable (or publishes it) first and then applies it to the
partition's state (`PartitionFlow.apply`), so a write or publish that fails leaves the state as
the FlowStore has it, and the record (or the next admission round) tries again.
"""

from __future__ import annotations

from dataclasses import dataclass

from headrace.flow.entries import Lease, Waiting
from headrace.messages.records import Deliverable
from headrace.messages.state import Timer


@dataclass(frozen=True)
class HoldLease:
    lease: Lease


@dataclass(frozen=True)
class FreeLease:
    lease_id: str
    # Taken back because its release never came (lost with a crashed executor's output).
    expired: bool = False


@dataclass(frozen=True)
class StartWaiting:
    waiting: Waiting
    run_id: str
    fn_id: str  # what the flow-control wait metric is labelled by


@dataclass(frozen=True)
class StopWaiting:
    item_id: str
    queue: str
    run_id: str
    # Left from the head of its queue, which then goes to the back of the service order.
    served: bool


@dataclass(frozen=True)
class PutThrottle:
    key: str
    tat: float


@dataclass(frozen=True)
class Deliver:
    item: Deliverable
    record: bytes


@dataclass(frozen=True)
class AddTimer:
    timer: Timer


@dataclass(frozen=True)
class CancelTimer:
    timer_id: str


Effect = (
    HoldLease
    | FreeLease
    | StartWaiting
    | StopWaiting
    | PutThrottle
    | Deliver
    | AddTimer
    | CancelTimer
)
