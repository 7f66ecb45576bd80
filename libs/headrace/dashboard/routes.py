"""The dashboard's pages and actions, under `/dashboard`.

Pages are rendered on the server; htmx (vendored in `static/`) refreshes the parts that change
while runs progress by polling small fragments. Actions are plain POST forms that redirect to the
page showing their effect, and go through the run controls, never writing state themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from headrace.api.context import ApiContext
from headrace.core.errors import InputError
from headrace.core.jsonutil import loads
from headrace.dashboard import data, timeline
from headrace.dashboard.auth import COOKIE, DashboardAuth
from headrace.dashboard.formatting import FILTERS
from headrace.messages.state import ENDED
from headrace.protocol.app_syncer import AppSyncer

log = structlog.get_logger(__name__)

PREFIX = "/dashboard"
# Which account's runs, events and apps the operator looks at (any the server has keys for).
ACCOUNT_COOKIE = "headrace_account"
Endpoint = Callable[[Request], Awaitable[Response]]


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("headrace.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals["prefix"] = PREFIX
    return env


async def _form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form, the only kind the dashboard's pages post (Starlette's
    own form parser would need python-multipart)."""
    return dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))


# A message goes in a redirect's Location: a few lines' worth, whatever the input it names.
MAX_MESSAGE_CHARS = 300


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + "..."


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = loads(text or "{}")
    except ValueError as err:
        raise InputError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object")
    return value


def dashboard_routes(ctx: ApiContext, auth: DashboardAuth, syncer: AppSyncer) -> list[BaseRoute]:
    """The dashboard's routes; in distributed mode without a token, a page saying why not."""
    if not auth.served:
        log.error(
            "dashboard not served: no dashboard token is configured "
            "(set HEADRACE_DASHBOARD_TOKEN); distributed mode never serves it unauthenticated"
        )

        async def refused(_: Request) -> Response:
            return PlainTextResponse(
                "The dashboard is disabled: set HEADRACE_DASHBOARD_TOKEN on the ingest service.",
                status_code=503,
            )

        return [Route(PREFIX + "/{rest:path}", refused), Route(PREFIX, refused)]

    env = _environment()
    stores = ctx.stores
    accounts = ctx.keys.accounts

    def account_of(request: Request) -> str:
        """The account the operator picked (a cookie), or the default one."""
        picked = request.cookies.get(ACCOUNT_COOKIE)
        return picked if picked is not None and picked in accounts else ctx.account

    def render(request: Request, template: str, status: int = 200, **values: Any) -> Response:
        html = env.get_template(template).render(
            request=request,
            accounts=accounts,
            account=account_of(request),
            notice=request.query_params.get("notice"),
            problem=request.query_params.get("problem"),
            login=auth.required,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def missing(request: Request, what: str) -> Response:
        # Right after an action (a notice says which) the page may come before the executor or
        # the runner has stored what the action started: it polls until it is there.
        if request.query_params.get("notice"):
            return render(request, "missing.html", nav=f"{what}s", what=what, pending=True)
        return render(request, "missing.html", 404, nav=f"{what}s", what=what, pending=False)

    def go(path: str, *, notice: str = "", problem: str = "") -> Response:
        sep = "&" if "?" in path else "?"
        if notice:
            path += f"{sep}notice={quote(_clip(notice))}"
        elif problem:
            path += f"{sep}problem={quote(_clip(problem))}"
        return RedirectResponse(PREFIX + path, status_code=303)

    def guarded(endpoint: Endpoint) -> Endpoint:
        async def check(request: Request) -> Response:
            if auth.allows(request):
                return await endpoint(request)
            if request.method == "GET" and "hx-request" not in request.headers:
                return RedirectResponse(
                    f"{PREFIX}/login?next={quote(request.url.path)}", status_code=303
                )
            return PlainTextResponse("log in to the dashboard first", status_code=401)

        return check

    def controls() -> Any:
        if ctx.controls is None:
            raise InputError("run controls are not available on this server")
        return ctx.controls

    # --- runs ---

    async def runs_page(request: Request) -> Response:
        wanted = data.RunFilter.parse(dict(request.query_params))
        account = account_of(request)
        functions = await stores.list_functions(account)
        return render(
            request,
            "runs.html",
            nav="runs",
            wanted=wanted,
            functions=functions,
            statuses=data.STATUSES,
            since=list(data.SINCE_MS),
            **await runs_values(account, wanted),
        )

    async def runs_values(account: str, wanted: data.RunFilter) -> dict[str, Any]:
        now = ctx.clock.now_ms()
        runs = await data.runs(stores, account, wanted, now)
        return {"runs": runs, "now": now, "query": wanted.query()}

    async def runs_table(request: Request) -> Response:
        wanted = data.RunFilter.parse(dict(request.query_params))
        return render(request, "_runs_table.html", **await runs_values(account_of(request), wanted))

    async def run_values(account: str, run_id: str) -> dict[str, Any] | None:
        run = await stores.get_run(run_id)
        if run is None or run.account_id != account:
            return None
        history = await stores.list_history(run_id)
        now = ctx.clock.now_ms()
        return {
            "run": run,
            "ended": run.status in ENDED,
            "timeline": timeline.build(run, history, now),
            "now": now,
            "fn": await stores.get_function(account, run.fn_id),
        }

    async def run_page(request: Request) -> Response:
        values = await run_values(account_of(request), request.path_params["run_id"])
        if values is None:
            return missing(request, "run")
        return render(request, "run.html", nav="runs", **values)

    async def run_live(request: Request) -> Response:
        values = await run_values(account_of(request), request.path_params["run_id"])
        if values is None:
            return PlainTextResponse("run not found", status_code=404)
        return render(request, "_run_live.html", **values)

    def run_action(act: Callable[[Any, str, str], Awaitable[str]], done: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            run_id = request.path_params["run_id"]
            try:
                target = await act(controls(), account_of(request), run_id)
            except InputError as err:
                return go(f"/runs/{run_id}", problem=str(err))
            return go(f"/runs/{target}", notice=done)

        return endpoint

    async def cancel(c: Any, account: str, run_id: str) -> str:
        await c.cancel(account, run_id)
        return run_id

    async def rerun(c: Any, account: str, run_id: str) -> str:
        new_run_id: str = await c.rerun(account, run_id)
        return new_run_id

    async def replay(c: Any, account: str, run_id: str) -> str:
        new_run_id: str = await c.replay(account, run_id)
        return new_run_id

    # --- events ---

    async def events_values(request: Request) -> dict[str, Any]:
        name = request.query_params.get("name") or None
        events = await stores.list_event_heads(
            account_of(request), name=name, limit=data.EVENTS_SHOWN
        )
        return {"rows": await data.event_rows(stores, events), "name": name or ""}

    async def events_page(request: Request) -> Response:
        return render(request, "events.html", nav="events", **await events_values(request))

    async def events_table(request: Request) -> Response:
        return render(request, "_events_table.html", **await events_values(request))

    async def event_page(request: Request) -> Response:
        event = await stores.get_event(request.path_params["event_id"])
        if event is None or event.account_id != account_of(request):
            return missing(request, "event")
        [row] = await data.event_rows(stores, [event])
        return render(request, "event.html", nav="events", row=row)

    async def send_event(request: Request) -> Response:
        form = await _form(request)
        try:
            name = str(form.get("name") or "").strip()
            payload = _json_object(str(form.get("data") or ""), "the event data")
            [event_id] = await controls().send_events(
                account_of(request), [{"name": name, "data": payload}]
            )
        except InputError as err:
            return go("/events", problem=str(err))
        return go(f"/events/{event_id}", notice="event sent")

    # --- apps and functions ---

    async def apps_page(request: Request) -> Response:
        apps = await data.apps(stores, account_of(request))
        return render(request, "apps.html", nav="apps", apps=apps)

    async def sync_app(request: Request) -> Response:
        app = await stores.get_app(account_of(request), request.path_params["app_id"])
        if app is None:
            return go("/apps", problem="app not found")
        async with httpx.AsyncClient(timeout=30) as client:
            ok = await syncer.sync_once(client, app.url, app.account_id)
        if ok:
            return go("/apps", notice=f"{app.app_id} synced")
        return go("/apps", problem=f"{app.app_id} did not answer the sync at {app.url}")

    async def invoke(request: Request) -> Response:
        fn_id = request.path_params["fn_id"]
        form = await _form(request)
        try:
            payload = _json_object(str(form.get("data") or ""), "the payload")
            event_id = await controls().invoke(account_of(request), fn_id, payload)
        except InputError as err:
            return go("/apps", problem=str(err))
        return go(f"/events/{event_id}", notice=f"{fn_id} invoked")

    # --- login ---

    async def login_page(request: Request) -> Response:
        return render(request, "login.html", next=request.query_params.get("next", PREFIX))

    async def login(request: Request) -> Response:
        form = await _form(request)
        next_path = str(form.get("next") or PREFIX)
        if not next_path.startswith(PREFIX):
            next_path = PREFIX
        if not auth.required:
            return RedirectResponse(next_path, status_code=303)
        if not auth.token_matches(str(form.get("token") or "")):
            return render(request, "login.html", 401, next=next_path, failed=True)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE, auth.session(), httponly=True, samesite="strict", path=PREFIX)
        return response

    async def logout(_: Request) -> Response:
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    async def pick_account(request: Request) -> Response:
        picked = str((await _form(request)).get("account") or "")
        if picked not in accounts:
            return go("/runs", problem=f"no such account: {picked}")
        response = go("/runs", notice=f"showing account {picked}")
        response.set_cookie(ACCOUNT_COOKIE, picked, httponly=True, samesite="strict", path=PREFIX)
        return response

    async def home(_: Request) -> Response:
        return RedirectResponse(PREFIX + "/runs", status_code=303)

    pages: list[tuple[str, Endpoint, list[str]]] = [
        ("", home, ["GET"]),
        ("/", home, ["GET"]),
        ("/runs", runs_page, ["GET"]),
        ("/runs/table", runs_table, ["GET"]),
        ("/runs/{run_id}", run_page, ["GET"]),
        ("/runs/{run_id}/live", run_live, ["GET"]),
        ("/runs/{run_id}/cancel", run_action(cancel, "cancellation requested"), ["POST"]),
        ("/runs/{run_id}/rerun", run_action(rerun, "rerun started"), ["POST"]),
        ("/runs/{run_id}/replay", run_action(replay, "replay started"), ["POST"]),
        ("/events", events_page, ["GET"]),
        ("/events", send_event, ["POST"]),
        ("/events/table", events_table, ["GET"]),
        ("/events/{event_id}", event_page, ["GET"]),
        ("/apps", apps_page, ["GET"]),
        ("/apps/{app_id}/sync", sync_app, ["POST"]),
        ("/functions/{fn_id}/invoke", invoke, ["POST"]),
        ("/account", pick_account, ["POST"]),
    ]
    static = StaticFiles(directory=Path(__file__).parent / "static")
    return [
        Route(PREFIX + "/login", login_page, methods=["GET"]),
        Route(PREFIX + "/login", login, methods=["POST"]),
        Route(PREFIX + "/logout", logout, methods=["POST"]),
        Mount(PREFIX + "/static", app=static, name="dashboard-static"),
        *(Route(PREFIX + path, guarded(fn), methods=methods) for path, fn, methods in pages),
        Route("/", home, methods=["GET"]),
    ]
