"""Durable Endpoints' sync checkpoints (protocol/endpoint.py): `POST /v1/checkpoint` creates the
run, `POST /v1/checkpoint/{run_id}/steps` adds to it, and `GET /v1/http/runs/{run_id}/output`
(also under `/v1/checkpoint/`, as Inngest mounts it) gives a redirected client the response.

Authenticated as the async checkpoint is (api/checkpoint.py), for the key's account's runs only;
the output route by the run's token instead, as a browser follows the redirect. The run is
written as the executor writes it (docs/run-writes.md), with the effects of its transition
(a step's retry, a timer, the run's end) made through the executor's outbox: from the moment
the endpoint's request hands the run over, the executor goes on with it.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext, acting, api_error
from headrace.api.run_writes import change_run
from headrace.core.errors import InputError
from headrace.core.ids import new_ulid, random_token
from headrace.core.jsonutil import canonical
from headrace.engine.machine import RunMachine
from headrace.messages.state import ENDED, FunctionRecord, RunState
from headrace.protocol.endpoint import endpoint_records, read_new_run, read_sync_steps
from headrace.protocol.registration import retries_of
from headrace.realtime.messages import STREAM_TOPIC
from headrace.realtime.tokens import STREAM_TOKEN_TTL_MS, TokenIssuer, TopicClaim
from headrace.runtime.signal_claims import claim_signals

# How long the output route waits for the run to end, and how often it looks (Inngest: 5 min,
# `CheckpointOutputWaitMax`).
OUTPUT_WAIT_S = 300.0
OUTPUT_POLL_S = 0.25


def _machine(ctx: ApiContext, run: RunState, memo_keys: set[str], fn: FunctionRecord) -> RunMachine:
    return RunMachine(
        run,
        memo_keys,
        max_attempts=retries_of(fn.config) + 1,
        now_ms=ctx.clock.now_ms(),
        new_id=lambda: new_ulid(ctx.clock.now_ms()),
        retry_interval_ms=ctx.retry_interval_ms,
        max_steps=ctx.max_steps,
    )


async def _new_run(ctx: ApiContext, request: Request) -> Response:
    if ctx.outbox is None:
        return api_error(404, "this server does not take checkpoints")
    try:
        new, steps = read_new_run(await request.body())
    except InputError as err:
        return api_error(err.status, str(err))
    # Refused before anything is written (its app and function, signal claims); the create
    # below still refuses the one of two racing requests that loses.
    if await ctx.stores.get_run(new.run_id) is not None:
        return api_error(409, f"run {new.run_id} exists already")
    now = ctx.clock.now_ms()
    app, fn = endpoint_records(ctx.account, new, now)
    stored = await ctx.stores.get_function(ctx.account, fn.fn_id)
    if stored is None or stored.config != fn.config:
        known = await ctx.stores.get_app(ctx.account, app.app_id)
        app.function_ids = sorted({*(known.function_ids if known else []), fn.fn_id})
        await ctx.stores.put_app(app)
        fn.updated_ms = now
        await ctx.stores.put_function(fn)
    event: dict[str, Any] = {
        "id": new.event.id or new_ulid(now),
        "name": new.event.name,
        "data": msgspec.to_builtins(new.event.data),
        "ts": new.event.ts or now,
    }
    run = RunState(
        run_id=new.run_id,
        account_id=ctx.account,
        fn_id=fn.fn_id,
        app_id=app.app_id,
        events=[event],
        started_ms=now,
        req_version=new.request_version if new.request_version is not None else -1,
        output_token=random_token(24),
    )
    machine = _machine(ctx, run, set(), fn)
    machine.start_endpoint(ctx.endpoint_timeout_ms)
    conflicts = await claim_signals(ctx.stores, run, set(), steps, now)
    machine.apply_endpoint_checkpoint(machine.request_call(), steps, conflicts)
    if not await ctx.outbox.commit(run, machine.out, f"endpoint:{new_ulid(now)}", 0, create=True):
        return api_error(409, f"run {new.run_id} exists already")
    for event_id in run.event_ids:
        await ctx.stores.link_run(event_id, run.run_id)
    return JSONResponse(
        {
            "data": {
                "run_id": run.run_id,
                "fn_id": fn.fn_id,
                "app_id": app.app_id,
                "token": run.output_token,
                # Where the endpoint's client reads the rest of a streamed response once the
                # run goes on in the engine: topic `$stream` of the run's channel, as Inngest's
                # (pkg/api/apiv1/checkpoint.go), for as long as Inngest lets a stream last.
                "realtime_token": TokenIssuer(ctx.keys).issue(
                    ctx.account, [TopicClaim(run.run_id, STREAM_TOPIC)], now, STREAM_TOKEN_TTL_MS
                ),
            }
        }
    )


async def _steps(ctx: ApiContext, request: Request) -> Response:
    if ctx.outbox is None:
        return api_error(404, "this server does not take checkpoints")
    run_id = request.path_params["run_id"]
    try:
        checkpoint, steps = read_sync_steps(run_id, await request.body())
    except InputError as err:
        return api_error(err.status, str(err))
    outbox = ctx.outbox

    async def decide(run: RunState, memo_keys: set[str]) -> Response:
        if checkpoint.fn_id != run.fn_id or checkpoint.app_id != run.app_id:
            return api_error(400, "fn_id and app_id must be the run's, as its creation answered")
        fn = await ctx.stores.get_function(run.account_id, run.fn_id)
        if fn is None or not run.output_token:
            return api_error(400, f"run {run_id} is not a Durable Endpoint's")
        machine = _machine(ctx, run, memo_keys, fn)
        if not machine.request_holds_run():
            # The request handed the run over (or it ended): the engine goes on with it now.
            return api_error(409, f"run {run_id} is no longer its request's")
        conflicts = await claim_signals(ctx.stores, run, memo_keys, steps, ctx.clock.now_ms())
        machine.apply_endpoint_checkpoint(machine.request_call(), steps, conflicts)
        if not machine.out.history and not machine.out.schedule:
            return JSONResponse({})
        await outbox.commit(
            run, machine.out, f"endpoint:{new_ulid(ctx.clock.now_ms())}", run.owner_epoch
        )
        return JSONResponse({})

    return await change_run(ctx, run_id, decide)


async def _output(ctx: ApiContext, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    token = request.query_params.get("token", "")
    loop = asyncio.get_running_loop()
    until = loop.time() + OUTPUT_WAIT_S
    while True:
        run = await ctx.stores.get_run(run_id)
        if run is None or not run.output_token or not _same(run.output_token, token):
            return api_error(401, "unable to find run with auth token")
        if run.status in ENDED:
            return _response_of(run)
        if loop.time() >= until:
            return JSONResponse(
                {"status": "running", "message": "run did not end within 5 minutes"}
            )
        await asyncio.sleep(OUTPUT_POLL_S)


def _same(expected: str, given: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    return hmac.compare_digest(expected.encode(), given.encode())


def _response_of(run: RunState) -> Response:
    """The endpoint's response as its return op carried it ({status, headers, body}); any other
    output (an error) as JSON."""
    output = run.output
    if run.status == "completed" and isinstance(output, dict):
        status = output.get("status")
        if isinstance(status, int) and 100 <= status <= 599:
            headers = output.get("headers")
            body = output.get("body")
            return Response(
                body if isinstance(body, str) else canonical(body),
                status_code=status,
                headers=_passed_headers(headers),
            )
    return Response(canonical(output), media_type="application/json")


def _passed_headers(headers: Any) -> dict[str, str]:
    """The response's headers, but those of its framing, which this response sets for itself."""
    if not isinstance(headers, dict):
        return {}
    framing = {"content-length", "transfer-encoding", "connection"}
    return {str(k): str(v) for k, v in headers.items() if str(k).lower() not in framing}


def endpoint_routes(ctx: ApiContext) -> list[BaseRoute]:
    async def output(request: Request) -> Response:
        return await _output(ctx, request)

    return [
        Route("/v1/checkpoint", acting(ctx, _new_run), methods=["POST"]),
        Route("/v1/checkpoint/{run_id}/steps", acting(ctx, _steps), methods=["POST"]),
        Route("/v1/http/runs/{run_id}/output", output, methods=["GET"]),
        Route("/v1/checkpoint/{run_id}/output", output, methods=["GET"]),
    ]
