"""What an SDK fetches when a call request says `use_api: true` because the payload was too large
to send (protocol §6): `GET /v0/runs/{run_id}/batch`, the run's trigger events as an array, and
`GET /v0/runs/{run_id}/actions`, its memos as an object keyed by step hash.

Both need `Authorization: Bearer <hashed signing key>` when the server has signing keys, and see
only the runs of that key's account."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext, acting, api_error
from headrace.core.jsonutil import canonical
from headrace.messages.state import RunState


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _memo_object(memos: dict[str, bytes]) -> bytes:
    # Memos are stored as JSON already; splicing them in avoids decoding megabytes to re-encode
    # them (this endpoint exists for outputs too large to send), and one join copies them once.
    parts = [b"{"]
    for step_hash, value in sorted(memos.items()):
        parts += (canonical(step_hash), b":", value, b",")
    if len(parts) > 1:
        parts.pop()  # the last comma
    parts.append(b"}")
    return b"".join(parts)


async def _load_run(ctx: ApiContext, request: Request) -> RunState | Response:
    run_id = request.path_params["run_id"]
    run = await ctx.stores.get_run(run_id)
    if run is None or run.account_id != ctx.account:
        return api_error(404, f"run not found: {run_id}")
    return run


async def _batch(ctx: ApiContext, request: Request) -> Response:
    run = await _load_run(ctx, request)
    if isinstance(run, Response):
        return run
    return _json(canonical(run.events))


async def _actions(ctx: ApiContext, request: Request) -> Response:
    run = await _load_run(ctx, request)
    if isinstance(run, Response):
        return run
    return _json(_memo_object(await ctx.stores.get_memos(run.run_id)))


def sdk_data_routes(ctx: ApiContext) -> list[BaseRoute]:
    return [
        Route("/v0/runs/{run_id}/batch", acting(ctx, _batch), methods=["GET"]),
        Route("/v0/runs/{run_id}/actions", acting(ctx, _actions), methods=["GET"]),
    ]
