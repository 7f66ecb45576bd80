"""Syncing apps given on the command line, at start and then periodically, like `inngest dev -u`."""

from __future__ import annotations

import asyncio

import httpx
import structlog

from headrace.core.jsonutil import canonical

log = structlog.get_logger(__name__)


class AppSyncer:
    def __init__(self, urls: list[str], interval_s: float, server_kind: str) -> None:
        self._urls = urls
        self._interval_s = interval_s
        self._server_kind = server_kind
        self._ok: dict[str, bool] = {}

    async def sync_once(self, client: httpx.AsyncClient, url: str) -> bool:
        """A PUT to the app makes it register itself at `/fn/register` (out-of-band sync)."""
        try:
            response = await client.put(
                url,
                content=canonical({"url": url}),
                headers={
                    "content-type": "application/json",
                    "x-inngest-server-kind": self._server_kind,
                },
            )
        except httpx.HTTPError as err:
            ok, detail = False, f"{type(err).__name__}: {err}"
        else:
            ok, detail = response.is_success, f"{response.status_code} {response.text[:200]}"
        if ok != self._ok.get(url):
            (log.debug if ok else log.warning)("app sync", url=url, ok=ok, detail=detail)
        self._ok[url] = ok
        return ok

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                await asyncio.gather(*(self.sync_once(client, url) for url in self._urls))
                await asyncio.sleep(self._interval_s)
