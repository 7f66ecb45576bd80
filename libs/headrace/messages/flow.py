"""What flow control decided about a run at its start, carried on its records.

The scheduler evaluates a run's concurrency keys and priority once, when its StartRun arrives,
and sends them on with the StartRun; the executor keeps them in the run's state and stamps them
on every Call it enqueues, so the scheduler can gate each call without reading the run.
"""

from __future__ import annotations

import msgspec


class Slot(msgspec.Struct, frozen=True, array_like=True):
    """One concurrency limit a call counts against: its virtual queue and that queue's limit."""

    key: str
    limit: int


class RunFlow(msgspec.Struct, kw_only=True):
    # The run's function: what the flow-control metrics are labelled by.
    fn_id: str = ""
    # The key of the run's records on `schedule` (`flow.config.flow_key`): the scheduler that
    # owns its partition decides the run's flow control. "": the account (a run planned before
    # flow keys existed).
    key: str = ""
    slots: list[Slot] = []
    # Among waiting items this run's go as if enqueued this much earlier (priority.run * 1000).
    priority_ms: int = 0
    # The run has a start timeout, to be cancelled when its first call is admitted.
    start_timeout: bool = False
    # The run is cancelled this long after it starts (0: never); the timer goes when it ends.
    finish_timeout_ms: int = 0


def schedule_key(account_id: str, flow: RunFlow | None) -> str:
    """The key of a run's records on `schedule`: its flow key once planned, else its account."""
    return flow.key if flow is not None and flow.key else account_id


def start_timer_id(run_id: str) -> str:
    return f"{run_id}:timeout:start"


def finish_timer_id(run_id: str) -> str:
    return f"{run_id}:timeout:finish"


def lease_id(run_id: str, target: str | None, seq: int, attempt: int) -> str:
    """The id of the lease one call holds: the same for every delivery of that call, so a call
    delivered again (after a crash) uses the lease it already has."""
    return f"{run_id}:lease:{target or ''}:{seq}:{attempt}"


def resume_lease_id(run_id: str, step_hash: str) -> str:
    """The id of the lease a resume holds for the call after it: the same for every delivery
    of the resume of that step (a step ends its wait once)."""
    return f"{run_id}:lease:resume:{step_hash}"
