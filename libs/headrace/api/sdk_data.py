"""What an SDK fetches when a call request says `use_api: true` because the payload was too large
to send (protocol §6): `GET /v0/runs/{run_id}/batch`, the run's trigger events as an array, and
`GET /v0/runs/{run_id}/actions`, its memos as an object keyed by step hash.

Both need `Authorization: Bearer <hashed signing key>` when the server has a signing key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext
from headrace.core.jsonutil import canonical
from headrace.messages.state import RunState
from headrace.protocol.signing import bearer_matches


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _memo_object(memos: dict[str, bytes]) -> bytes:
    # Memos are stored as JSON already; splicing them in avoids decoding megabytes to re-encode
    # them (this endpoint exists for outputs too large to send).
    members = [canonical(step_hash) + b":" + value for step_hash, value in sorted(memos.items())]
    return b"{" + b",".join(members) + b"}"


def sdk_data_routes(ctx: ApiContext) -> list[BaseRoute]:
    async def load_run(request: Request) -> RunState | Response:
        key = ctx.signing_key
        if key is not None and not bearer_matches(request.headers.get("authorization"), key):
            return _error(401, "a valid signing key is required")
        run_id = request.path_params["run_id"]
        run = await ctx.stores.get_run(run_id)
        if run is None or run.account_id != ctx.default_account:
            return _error(404, f"run not found: {run_id}")
        return run

    async def batch(request: Request) -> Response:
        run = await load_run(request)
        if isinstance(run, Response):
            return run
        return _json(canonical(run.events))

    async def actions(request: Request) -> Response:
        run = await load_run(request)
        if isinstance(run, Response):
            return run
        return _json(_memo_object(await ctx.stores.get_memos(run.run_id)))

    return [
        Route("/v0/runs/{run_id}/batch", batch, methods=["GET"]),
        Route("/v0/runs/{run_id}/actions", actions, methods=["GET"]),
    ]
