"""`POST /v1/checkpoint/{run_id}/async`: the 4.x SDK's finished steps, stored while the call
that ran them goes on (protocol/checkpoint.py). Authenticated as the SDK's other API calls are
(its hashed signing key as a bearer token), for that key's account's runs only.

The write is the executor's kind of write (docs/run-writes.md): the run and the step's memo in
one write conditional on the version read, decided by the run machine from that version. A
checkpoint keeps the run's last record, and adds its history to the run's outbox, so a record
the executor handles again after a crash still finds its own id and makes its effects again.

A call repeated after a fault (the engine restarted while the app ran it) has the same seq and
attempt as the first; the first may still be running in the app. They differ by the owner
epoch of the executor that made them (in `qi_id`): a checkpoint stamps the run with its call's
epoch when newer, and one from a call made under an older epoch than the run's is refused once
a newer owner has taken the partition (the test executors make, ownership.py), so the first
call stops at its next checkpoint instead of running the rest of the run beside the repeat.

The answers are Inngest's (`pkg/api/apiv1/checkpoint.go` `CheckpointAsyncSteps`): 200 once
stored, 409 for a call no longer current (the SDK stops that call: `StaleDispatchError`, and
answers it with an error only an executor that gave the call up receives), 400 for a body it
cannot read, and 404 for a run it cannot see.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext, acting, api_error
from headrace.api.run_writes import change_run
from headrace.core.errors import InputError
from headrace.core.ids import new_ulid
from headrace.engine.machine import RunMachine
from headrace.messages.state import RunState
from headrace.protocol.checkpoint import Dispatch, read_checkpoint
from headrace.runtime.ownership import Ownership


async def _async_checkpoint(ctx: ApiContext, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        checkpoint, steps, dispatch = read_checkpoint(run_id, await request.body())
    except InputError as err:
        return api_error(err.status, str(err))

    async def decide(run: RunState, memo_keys: set[str]) -> Response:
        if checkpoint.fn_id != run.fn_id:
            return api_error(400, f"fn_id {checkpoint.fn_id!r} is not the run's function")
        # A checkpoint only settles steps that succeeded: no attempt is counted here.
        machine = RunMachine(
            run,
            memo_keys,
            max_attempts=1,
            now_ms=ctx.clock.now_ms(),
            new_id=lambda: new_ulid(ctx.clock.now_ms()),
        )
        call = dispatch.call
        call.account_id = run.account_id
        if not machine.is_current_call(call) or await _superseded(ctx, run.owner_epoch, dispatch):
            return api_error(409, f"the call {checkpoint.qi_id!r} of run {run_id} is not current")
        machine.apply_checkpoint(call, steps)
        newer_owner = dispatch.epoch > run.owner_epoch
        if not machine.out.history and not newer_owner:
            return JSONResponse({})
        run.owner_epoch = max(run.owner_epoch, dispatch.epoch)
        run.outbox_history = [*run.outbox_history, *machine.out.history]
        await ctx.stores.save_run(run, machine.out.memos)
        for entry in machine.out.history:
            await ctx.stores.append_history(entry)
        return JSONResponse({})

    return await change_run(ctx, run_id, decide)


async def _superseded(ctx: ApiContext, run_epoch: int, dispatch: Dispatch) -> bool:
    """Whether the call was made by a former owner of the run: the run is stamped with a newer
    epoch, and the partition's counter agrees (as RunTransactions.read decides)."""
    if run_epoch <= dispatch.epoch:
        return False
    return await Ownership(ctx.stores, ctx.clock).superseded(dispatch.partition, dispatch.epoch)


def checkpoint_routes(ctx: ApiContext) -> list[BaseRoute]:
    return [
        Route("/v1/checkpoint/{run_id}/async", acting(ctx, _async_checkpoint), methods=["POST"]),
    ]
