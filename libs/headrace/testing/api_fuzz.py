"""Requests sent to a `headrace dev` in this process (its ASGI app, no socket) and what is wrong
with each answer: a 5xx, no answer in time, something stored from a refused request, or a
protected route answering a stranger.

The server's consume loops are not started, so nothing but the requests writes: every write
shows in the SQLite connection's change count (the stores and the embedded log share it), and a
refused request must leave it where it was."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from dataclasses import dataclass, field

import httpx

from headrace.core.ids import new_ulid
from headrace.dev.server import DevServer
from headrace.protocol.accounts import DEFAULT_ACCOUNT
from headrace.runtime.settings import DEV_SETTINGS, EmbeddedStorage
from headrace.testing.api_bodies import Held
from headrace.testing.api_requests import ApiRequest, Operation

# Bounded time per request: any answer the fuzz can reach comes in milliseconds (the long polls
# wait only for a run the fuzz cannot create a token for).
REQUEST_TIMEOUT_S = 10.0
LOGIN = "/dashboard/login"


@dataclass(frozen=True)
class Outcome:
    status: int  # 0: no answer within REQUEST_TIMEOUT_S
    location: str
    body: bytes
    writes: int


@dataclass
class Target:
    """One dev server, open or with keys required, and the requests made to it."""

    server: DevServer
    keyed: bool
    # Ids of what the server holds (an app, its functions, a run, an event, its intake
    # topics): the fuzz draws path segments and fields from them too, to reach past "not found".
    known: list[str] = field(default_factory=list)
    # Durable Endpoint runs held by their requests, for the checkpoints' mostly-valid bodies.
    held: Held | None = None
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        # A 500 comes back as an answer, as a client over the network sees it.
        transport = httpx.ASGITransport(app=self.server.app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://fuzz")

    @classmethod
    async def start(cls, *, keyed: bool) -> Target:
        """A dev server holding an app, a run and an event."""
        target = cls._dev(keyed)
        await target._seed()
        return target

    @classmethod
    def _dev(cls, keyed: bool) -> Target:
        settings = dataclasses.replace(
            DEV_SETTINGS, embedded=EmbeddedStorage(state_dir=None, poll_interval_s=3600)
        )
        if keyed:
            # Drawn afresh, never literals in code: Hypothesis draws strings from the constants
            # in the code it runs, and a key it found would be no stranger's.
            settings = dataclasses.replace(
                settings,
                event_keys=((secrets.token_hex(16), DEFAULT_ACCOUNT),),
                signing_key="signkey-test-" + secrets.token_hex(32),
                dashboard_token=secrets.token_urlsafe(24),
            )
        return cls(DevServer(settings), keyed)

    async def _seed(self) -> None:
        settings = self.server.settings
        auth = {"authorization": f"Bearer {settings.signing_key}"} if self.keyed else {}
        event_key = settings.event_keys[0][0] if settings.event_keys else "any-key"
        # Port 1 of loopback: a call the server makes to this app is refused at once.
        url = "http://127.0.0.1:1/api/inngest"
        step = {"id": "step", "name": "step", "runtime": {"type": "http", "url": url}}
        function = {"id": "fuzz-fn", "name": "fn", "triggers": [{"event": "fuzz/go"}]}
        sync = {
            "url": url,
            "appName": "fuzz-app",
            "sdk": "fuzz",
            "framework": "none",
            "functions": [{**function, "steps": {"step": step}}],
        }
        synced = await self.client.post("/fn/register", json=sync, headers=auth)
        created, held_steps, held_async = [
            await self._endpoint_run(path, auth) for path in ("/x", "/steps", "/async")
        ]
        sent = await self.client.post(f"/e/{event_key}", json={"name": "fuzz/go"})
        for response in (synced, sent):
            response.raise_for_status()
        self.held = Held(
            steps_run=held_steps["run_id"],
            steps_fn=held_steps["fn_id"],
            steps_app=held_steps["app_id"],
            async_run=held_async["run_id"],
            async_fn=held_async["fn_id"],
        )
        stores = self.server.stores
        # As stored: the function ids the sync made of the app's and its own.
        functions = await stores.list_functions(DEFAULT_ACCOUNT)
        apps = await stores.list_apps(DEFAULT_ACCOUNT)
        self.known = [
            *(app.app_id for app in apps),
            *(fn.fn_id for fn in functions),
            created["run_id"],
            *sent.json()["ids"],
            "fuzz/go",
            *settings.intake_topics,
        ]

    async def _endpoint_run(self, path: str, auth: dict[str, str]) -> dict[str, str]:
        """A new Durable Endpoint run with one step, held by its request."""
        request = {"domain": "http://127.0.0.1:1", "method": "POST", "path": path, "body": "{}"}
        run = {
            "run_id": new_ulid(self.server.clock.now_ms()),
            "event": {"name": "inngest/http.request", "data": request},
            "steps": [{"op": "StepRun", "id": "h1", "data": 1}],
        }
        created = await self.client.post("/v1/checkpoint", json=run, headers=auth)
        created.raise_for_status()
        data: dict[str, str] = created.json()["data"]
        return data

    async def _changes(self) -> int:
        return await self.server.embedded.db.run(lambda conn: conn.total_changes)

    async def send(self, request: ApiRequest) -> Outcome:
        before = await self._changes()
        try:
            response = await asyncio.wait_for(
                self.client.request(
                    request.method,
                    request.target,
                    # As sent on the wire: latin-1 (httpx would take str as ASCII only).
                    headers=[(k, v.encode("latin-1")) for k, v in request.headers],
                    content=request.body,
                ),
                REQUEST_TIMEOUT_S,
            )
        except TimeoutError:
            return Outcome(0, "", b"", await self._changes() - before)
        writes = await self._changes() - before
        return Outcome(
            response.status_code, response.headers.get("location", ""), response.content, writes
        )

    async def close(self) -> None:
        await self.client.aclose()
        await self.server.embedded.close()


def refused(outcome: Outcome) -> bool:
    """A 4xx, or a dashboard form's redirect to the login or to a page saying what was wrong."""
    if 400 <= outcome.status < 500:
        return True
    return outcome.status == 303 and (
        outcome.location.startswith(LOGIN) or "problem=" in outcome.location
    )


def refused_stranger(outcome: Outcome) -> bool:
    return outcome.status in (401, 403) or (
        outcome.status == 303 and outcome.location.startswith(LOGIN)
    )


def _accepted_ids(outcome: Outcome) -> int:
    """The Event API's 400 returns the ids of the events before the first invalid one, which
    it accepted (as Inngest's does): one log record each."""
    try:
        body = json.loads(outcome.body)
    except ValueError:
        return 0
    ids = body.get("ids") if isinstance(body, dict) else None
    return len(ids) if isinstance(ids, list) else 0


def problems(op: Operation, outcome: Outcome, *, keyed: bool) -> list[str]:
    found = []
    if outcome.status == 0:
        found.append(f"no answer within {REQUEST_TIMEOUT_S} s")
    elif outcome.status >= 500:
        found.append(f"answered {outcome.status}: {outcome.body[:300]!r}")
    allowed = _accepted_ids(outcome) if op.path == "/e/{key}" else 0
    if refused(outcome) and outcome.writes != allowed:
        found.append(f"refused ({outcome.status}) but wrote {outcome.writes} rows")
    if keyed and op.protected and not refused_stranger(outcome):
        found.append(f"answered a stranger with {outcome.status}")
    return found
