"""What the HTTP handlers need, handed to them by whoever wires the process, and the account
each API request acts for."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from headrace.api.controls import RunControls
from headrace.core.clock import Clock
from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.ports.stores import Stores
from headrace.protocol.accounts import DEFAULT_ACCOUNT, AccountKeys
from headrace.protocol.endpoint import ENDPOINT_TIMEOUT_MS
from headrace.services.executor.outbox import Outbox


@dataclass(frozen=True)
class ApiContext:
    stores: Stores
    clock: Clock
    keys: AccountKeys = field(default_factory=AccountKeys)
    # The account a request acts for: set per request by `acting`, from its signing key.
    account: str = DEFAULT_ACCOUNT
    # Cancel, rerun, replay, invoke: absent where a process serves reads only.
    controls: RunControls | None = None
    # Writes a run with the effects of its transition: what a Durable Endpoint's checkpoints
    # need (api/endpoint.py); absent where a process serves reads only.
    outbox: Outbox | None = None
    # Every retry decided here (an endpoint's step error) waits this long instead of Inngest's
    # schedule, as the executor's (`--retry-interval`).
    retry_interval_ms: int | None = None
    # The per-run step limit, as the executor's (a Durable Endpoint's run is moved here too).
    max_steps: int = DEFAULT_MAX_STEPS
    # How long a Durable Endpoint's request may hold its run (protocol/endpoint.py).
    endpoint_timeout_ms: int = ENDPOINT_TIMEOUT_MS


Handler = Callable[[ApiContext, Request], Awaitable[Response]]


def api_error(status: int, message: str) -> Response:
    """An API refusal, shaped as Inngest's API answers them."""
    return JSONResponse({"error": message, "status": status}, status_code=status)


def acting(ctx: ApiContext, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that runs `handler` for the account whose signing key the request shows
    (`Authorization: Bearer ...`), or refuses it; on a dev server, for the default account."""

    async def endpoint(request: Request) -> Response:
        account = ctx.keys.for_authorization(request.headers.get("authorization"))
        if account is None:
            return api_error(401, "a valid signing key is required")
        return await handler(dataclasses.replace(ctx, account=account), request)

    return endpoint
