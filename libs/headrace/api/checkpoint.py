"""`POST /v1/checkpoint/{run_id}/async`: the 4.x SDK's finished steps, stored while the call
that ran them goes on (protocol/checkpoint.py). Authenticated as the SDK's other API calls are
(its hashed signing key as a bearer token), for that key's account's runs only.

The write is the executor's kind of write (docs/run-writes.md): the run and the step's memo in
one write conditional on the version read, decided by the run machine from that version. A
checkpoint changes neither the run's last record nor its owner epoch, and adds its history to
the run's outbox, so a record the executor handles again after a crash still finds its own id
and makes its effects again. The answers are Inngest's (`pkg/api/apiv1/checkpoint.go`
`CheckpointAsyncSteps`): 200 once stored, 409 for a call no longer current (the SDK stops that
call: `StaleDispatchError`), 400 for a body it cannot read, and 404 for a run it cannot see.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext, acting
from headrace.core.errors import Conflict, InputError
from headrace.core.ids import new_ulid
from headrace.engine.machine import RunMachine
from headrace.protocol.checkpoint import read_checkpoint

# Another writer of the run (the executor applying a resume or a cancel) can win the write;
# the checkpoint is decided again from the run as it then is, this many times.
_CONFLICT_ROUNDS = 5


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _async_checkpoint(ctx: ApiContext, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        checkpoint, call = read_checkpoint(run_id, await request.body())
    except InputError as err:
        return _error(err.status, str(err))
    for _ in range(_CONFLICT_ROUNDS):
        found = await ctx.stores.get_run_and_memos(run_id)
        if found is None or found[0].account_id != ctx.account:
            return _error(404, f"run not found: {run_id}")
        run, memos = found
        if checkpoint.fn_id != run.fn_id:
            return _error(400, f"fn_id {checkpoint.fn_id!r} is not the run's function")
        # A checkpoint only settles steps that succeeded: no attempt is counted here.
        machine = RunMachine(
            run,
            set(memos),
            max_attempts=1,
            now_ms=ctx.clock.now_ms(),
            new_id=lambda: new_ulid(ctx.clock.now_ms()),
        )
        call.account_id = run.account_id
        if not machine.is_current_call(call):
            return _error(409, f"the call {checkpoint.qi_id!r} of run {run_id} is not current")
        machine.apply_checkpoint(call, checkpoint.steps)
        if not machine.out.memos:
            return JSONResponse({})
        run.outbox_history = [*run.outbox_history, *machine.out.history]
        try:
            await ctx.stores.save_run(run, machine.out.memos)
        except Conflict:
            continue
        for entry in machine.out.history:
            await ctx.stores.append_history(entry)
        return JSONResponse({})
    return _error(503, f"run {run_id} kept changing; checkpoint again")


def checkpoint_routes(ctx: ApiContext) -> list[BaseRoute]:
    return [
        Route("/v1/checkpoint/{run_id}/async", acting(ctx, _async_checkpoint), methods=["POST"]),
    ]
