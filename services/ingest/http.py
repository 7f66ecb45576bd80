"""The ingest service's HTTP surface: Event API, app sync, and the read APIs."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from headrace.services.ingest.body_cap import BodyCap
from headrace.services.ingest.events import EventIngest
from headrace.services.ingest.sync import AppSync
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headrace.api.checkpoint import checkpoint_routes
from headrace.api.context import ApiContext, acting
from headrace.api.dev_info import dev_info_routes
from headrace.api.endpoint import endpoint_routes
from headrace.api.gql.routes import gql_routes
from headrace.api.openapi import openapi_routes
from headrace.api.rate_limit import RateLimited
from headrace.api.sdk_data import sdk_data_routes
from headrace.api.v1 import v1_routes
from headrace.api.v1_controls import v1_control_routes
from headrace.core.errors import InputError
from headrace.flow.client_rate import ClientRate
from headrace.obs.metrics import metrics_route
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.registration import parse_sync

log = structlog.get_logger(__name__)


def _error(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, **extra}, status_code=status)


def event_api_routes(ingest: EventIngest, keys: AccountKeys) -> list[BaseRoute]:
    """`POST /e/{key}`: the events go to the key's account; an unknown key is refused (on a dev
    server without event keys, every key is the default account's)."""

    async def send(request: Request) -> Response:
        account = keys.for_event_key(request.path_params["key"])
        if account is None:
            return _error(401, "unknown event key", ids=[])
        # As Inngest's Event API: the valid prefix is accepted, and a 400 returns its ids.
        items, problem = ingest.parse(await request.body())
        seed = request.headers.get("x-inngest-event-id-seed")
        ids = await ingest.accept(account, items, seed) if items else []
        if problem is not None:
            log.info("events rejected", reason=str(problem), accepted=len(ids))
            return _error(problem.status, str(problem), ids=ids)
        return JSONResponse({"ids": ids, "status": 200})

    return [Route("/e/{key}", send, methods=["POST"])]


def register_routes(sync: AppSync, ctx: ApiContext) -> list[BaseRoute]:
    """`POST /fn/register`: the app and its functions join the account of the signing key the
    SDK shows (the default account, on a dev server)."""

    async def register(ctx: ApiContext, request: Request) -> Response:
        expected = request.headers.get("x-inngest-expected-server-kind")
        kind = ctx.keys.server_kind
        if expected and expected != kind:
            return _error(400, f"this server is a {kind} server, the SDK expected {expected}")
        try:
            parsed = parse_sync(await request.body())
        except InputError as err:
            log.info("sync refused", reason=str(err))
            return _error(400, str(err))
        app, modified = await sync.register(ctx.account, parsed)
        (log.info if modified else log.debug)(
            "app synced",
            account_id=ctx.account,
            app_id=app.app_id,
            url=app.url,
            functions=len(parsed.functions),
        )
        return JSONResponse({"ok": True, "modified": modified, "app_id": app.app_id})

    return [Route("/fn/register", acting(ctx, register), methods=["POST"])]


def build_app(
    ctx: ApiContext,
    ingest: EventIngest,
    sync: AppSync,
    *,
    extra_routes: list[BaseRoute] | None = None,
    metrics_allows: Callable[[Request], bool] | None = None,
    rate_limit: ClientRate | None = None,
) -> Starlette:
    kind = ctx.keys.server_kind

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes: list[BaseRoute] = [
        Route("/health", health),
        *openapi_routes(),
        *dev_info_routes(ctx),
        *event_api_routes(ingest, ctx.keys),
        *register_routes(sync, ctx),
        *sdk_data_routes(ctx),
        *checkpoint_routes(ctx),
        *endpoint_routes(ctx),
        *gql_routes(ctx),
        *v1_routes(ctx),
        metrics_route(metrics_allows),
        *v1_control_routes(ctx),
        *(extra_routes or []),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(ServerKindHeader, kind=kind),
            # Refused for their rate before their size: a flood of large bodies counts.
            Middleware(
                RateLimited, limit=rate_limit or ClientRate(), keys=ctx.keys, clock=ctx.clock
            ),
            Middleware(BodyCap),
        ],
        exception_handlers={ClientDisconnect: _client_gone},
    )


async def _client_gone(request: Request, _: Exception) -> Response:
    # The client hung up before its body was read: nothing was parsed or stored, and no one
    # is left to answer. Not the server's error.
    log.debug("client disconnected before its request body was read", path=request.url.path)
    return Response(status_code=499)


class ServerKindHeader:
    """Every API response says which kind of server answered, as the SDKs expect."""

    def __init__(self, app: ASGIApp, kind: str) -> None:
        self._app = app
        self._header = (b"x-inngest-server-kind", kind.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self._header]
            await send(message)

        await self._app(scope, receive, with_header)
