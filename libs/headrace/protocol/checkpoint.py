"""Async checkpointing (npm `inngest` 4.x): the SDK runs the steps of one call one after another
and, after each, POSTs it to `/v1/checkpoint/{run_id}/async` instead of answering the call, so a
run of ten steps takes one call instead of eleven. The SDK turns it on only when the call's
`ctx.qi_id` names the call (4.24.0 `components/execution/engine.js` `checkpoint`); headrace
gives there the call's identity and the partition and owner epoch of the executor that made it
(runtime/ownership.py), and a checkpoint is applied only while that call is current
and no newer owner has taken the run over from that executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from headrace.core.errors import InputError
from headrace.core.jsonutil import decode
from headrace.messages.records import Call
from headrace.protocol.ops import STEP_RUN, InvalidOp, Op, StepPlanned, decode_ops

# What a checkpoint may carry: finished steps, and the SDK's notice that a step is about to run
# (Inngest opens a span for it; headrace's trace shows it running: api/gql/trace.py). Inngest
# refuses any other opcode (pkg/execution/checkpoint/checkpoint.go `checkpointAsyncSteps`:
# "cannot checkpoint opcode").
_CHECKPOINTABLE = (*STEP_RUN, StepPlanned)


class AsyncCheckpoint(msgspec.Struct, kw_only=True):
    """The body of `POST /v1/checkpoint/{run_id}/async` (4.24.0 `api/api.js`
    `checkpointStepsAsync`; Inngest `pkg/api/apiv1/checkpoint_types.go` `checkpointAsyncSteps`).
    `request_id`, `generation_id` and `request_started_at` are Inngest's queue fencing; the
    call named by `qi_id` plays that part here."""

    run_id: str
    fn_id: str
    qi_id: str
    steps: list[dict[str, Any]]  # read by `read_checkpoint`
    request_id: str | None = None
    generation_id: int | None = None
    request_started_at: int | None = None
    ts: int | None = None


@dataclass(frozen=True)
class Dispatch:
    """A call as made: by the executor owning `partition` of `work` at `epoch`."""

    call: Call
    partition: int
    epoch: int


def queue_item_id(call: Call, partition: int, epoch: int) -> str:
    """`ctx.qi_id` for a call made by the owner of `partition` at `epoch`."""
    return f"{partition}:{epoch}:{call.seq}:{call.attempt}:{call.target or ''}"


def read_checkpoint(run_id: str, body: bytes) -> tuple[AsyncCheckpoint, list[Op], Dispatch]:
    """The checkpoint, its steps and the call it was taken in; InputError (400) for anything
    else."""
    try:
        checkpoint = decode(body, AsyncCheckpoint)
        steps = decode_ops(checkpoint.steps)
    except msgspec.DecodeError as err:
        raise InputError(f"the body is not a checkpoint: {err}") from None
    if checkpoint.run_id != run_id:
        raise InputError(f"the body's run_id {checkpoint.run_id!r} is not the URL's {run_id!r}")
    invalid = next((op for op in steps if not isinstance(op, _CHECKPOINTABLE)), None)
    if invalid is not None:
        raise InputError(
            f"cannot checkpoint a {invalid.opcode[:100]!r} op: only finished step.run steps"
            + (f" ({invalid.reason})" if isinstance(invalid, InvalidOp) else "")
        )
    if any(not op.id for op in steps):
        raise InputError("every checkpointed step needs its id")
    return checkpoint, steps, _dispatch_of(run_id, checkpoint.qi_id)


def _dispatch_of(run_id: str, qi_id: str) -> Dispatch:
    partition, epoch, seq, attempt, target = [*qi_id.split(":", 4), "", "", "", "", ""][:5]
    try:
        call = Call(
            account_id="", run_id=run_id, seq=int(seq), attempt=int(attempt), target=target or None
        )
        return Dispatch(call, int(partition), int(epoch))
    except ValueError:
        raise InputError(f"qi_id {qi_id!r} does not name a call headrace made") from None
