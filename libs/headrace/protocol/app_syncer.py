"""Syncing apps by URL: at start and then periodically, like `inngest dev -u`, and on the
dashboard's re-sync.

The PUT asks for an in-band sync (`X-Inngest-Sync-Kind: in_band`, as Inngest Cloud and its
conformance runner send it: pkg/conformance/runner/serve/runner.go): an SDK that allows it
answers with its functions in the response (inngest-js `InngestCommHandler` `inBandRegisterBody`),
which headrace registers; one that does not (`INNGEST_ALLOW_IN_BAND_SYNC=0`, the Python SDK in
dev mode) registers itself at `/fn/register` first and answers `out_of_band` or nothing. The
SDK checks an in-band request's signature unless it is in dev mode: with signing keys, the PUT
is signed with the account's key, and without one for the account it asks out of band.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import httpx
import structlog

from headrace.core.clock import Clock
from headrace.core.errors import InputError
from headrace.core.jsonutil import canonical
from headrace.protocol.accounts import DEFAULT_ACCOUNT, AccountKeys
from headrace.protocol.registration import SyncRequest, parse_sync
from headrace.protocol.signing import sign
from headrace.protocol.urls import url_problem

log = structlog.get_logger(__name__)

SYNC_KIND = "x-inngest-sync-kind"
IN_BAND = "in_band"
# How long a sync may take: the app's own POST to /fn/register runs inside it, and that waits
# out a store or broker that is slow to answer.
SYNC_TIMEOUT_S = 30

# Stores what an app registers in an account (services/ingest/sync.py `AppSync.register`).
Register = Callable[[str, SyncRequest], Awaitable[object]]


class AppSyncer:
    def __init__(
        self,
        urls: Sequence[str],
        interval_s: float,
        keys: AccountKeys,
        clock: Clock,
        register: Register,
    ) -> None:
        self._urls = urls
        self._interval_s = interval_s
        self._keys = keys
        self._clock = clock
        self._register = register
        self._ok: dict[str, bool] = {}

    async def sync_once(
        self, client: httpx.AsyncClient, url: str, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        """Sync the app at `url` into `account`; True when it is registered."""
        body = canonical({"url": url})
        headers = {
            "content-type": "application/json",
            "x-inngest-server-kind": self._keys.server_kind,
        }
        signing_key = self._keys.signing_key(account)
        if self._keys.server_kind == "dev" or signing_key:
            headers[SYNC_KIND] = IN_BAND
        if signing_key:
            headers["x-inngest-signature"] = sign(body, signing_key, self._clock.now_ms() // 1000)
        ok, detail = await self._put(client, url, body, headers, account)
        if ok != self._ok.get(url):
            (log.debug if ok else log.warning)("app sync", url=url, ok=ok, detail=detail)
        self._ok[url] = ok
        return ok

    async def _put(
        self,
        client: httpx.AsyncClient,
        url: str,
        body: bytes,
        headers: dict[str, str],
        account: str,
    ) -> tuple[bool, str]:
        # A URL no request can go to (a NUL byte, port 99999) is a failed sync, not a crash.
        problem = url_problem(url)
        if problem is not None:
            return False, f"the app's url {problem}"
        try:
            response = await client.put(url, content=body, headers=headers)
        except httpx.HTTPError as err:
            return False, f"{type(err).__name__}: {err}"
        ok, detail = response.is_success, f"{response.status_code} {response.text[:200]}"
        if ok and response.headers.get(SYNC_KIND) == IN_BAND:
            try:
                await self._register(account, parse_sync(response.content))
            except InputError as err:
                return False, f"the in-band sync answer was refused: {err}"
        return ok, detail

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=SYNC_TIMEOUT_S) as client:
            while True:
                await asyncio.gather(*(self.sync_once(client, url) for url in self._urls))
                await asyncio.sleep(self._interval_s)
