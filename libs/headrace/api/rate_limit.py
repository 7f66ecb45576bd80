"""A per-client rate limit on the requests that write (POST, PUT, DELETE), so one client cannot
exhaust the ingest: over the limit, a request is answered 429 with `Retry-After` before its body
is read.

A client is the account its key names (the event key of `/e/{key}`, else the signing key of
`Authorization`), so one tenant's flood never slows another's; a request whose key names no
account is counted by its address, so a stranger cannot dodge the limit by inventing keys.
Reads (GET) are not limited here. The state is one GCRA number per client (flow/gcra.py),
dropped once it is in the past: a client idle for a burst's length costs nothing.
"""

from __future__ import annotations

import math

from starlette.types import ASGIApp, Receive, Scope, Send

from headrace.api.context import api_error
from headrace.core.clock import Clock
from headrace.flow.client_rate import ClientRate
from headrace.protocol.accounts import AccountKeys

LIMITED_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# Past this many clients tracked, those whose state has lapsed are dropped.
_PRUNE_AT = 10_000


class RateLimited:
    """ASGI middleware applying a `ClientRate` to the writing requests of the app it wraps."""

    def __init__(self, app: ASGIApp, limit: ClientRate, keys: AccountKeys, clock: Clock) -> None:
        self._app = app
        self._gcra = limit.gcra() if limit.enabled else None
        self._keys = keys
        self._clock = clock
        self._tats: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._gcra is None or scope["type"] != "http" or scope["method"] not in LIMITED_METHODS:
            await self._app(scope, receive, send)
            return
        client = self._client(scope)
        now = self._clock.now_ms()
        admitted, tat = self._gcra.admit(self._tats.get(client), now)
        if admitted:
            self._remember(client, tat, now)
            await self._app(scope, receive, send)
            return
        wait_ms = self._gcra.next_at(tat, now) - now
        refusal = api_error(429, "too many requests: slow down and retry after the given seconds")
        refusal.headers["retry-after"] = str(max(1, math.ceil(wait_ms / 1000)))
        await refusal(scope, receive, send)

    def _client(self, scope: Scope) -> str:
        path: str = scope["path"]
        if path.startswith("/e/"):
            account = self._keys.for_event_key(path[3:].split("/", 1)[0])
        else:
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode("latin-1") or None
            account = self._keys.for_authorization(authorization) if authorization else None
        if account is not None:
            return f"account:{account}"
        host = scope["client"][0] if scope.get("client") else "unknown"
        return f"address:{host}"

    def _remember(self, client: str, tat: float, now: int) -> None:
        self._tats[client] = tat
        if len(self._tats) > _PRUNE_AT:
            # A lapsed TAT admits as no TAT does: forgetting it changes nothing.
            self._tats = {c: t for c, t in self._tats.items() if t > now}
