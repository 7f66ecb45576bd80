"""The `/v1` REST read API: events and runs, in the shapes of the Inngest API's v1 endpoints
(inngest/inngest pkg/api/apiv1): `{"data": ..., "metadata": {...}}`, errors as
`{"error": ..., "status": ...}`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext, acting, api_error
from headrace.core.durations import format_iso_ms
from headrace.messages.model import Event, EventListing
from headrace.messages.state import ENDED, RunState

_DEFAULT_LIMIT = 20
_MAX_LIMIT = 100

# Inngest's names for run statuses (Go enums.RunStatus).
_RUN_STATUS = {
    "queued": "Scheduled",
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def _time(ms: int) -> str | None:
    return format_iso_ms(ms) if ms else None


def _event_json(event: Event | EventListing) -> dict[str, Any]:
    payload = event.payload
    shown = {
        "internal_id": event.internal_id,
        "id": payload.get("id", ""),
        "name": event.name,
        "data": payload.get("data", {}),
        "user": payload.get("user"),
        "ts": payload.get("ts"),
        "v": payload.get("v"),
        "received_at": format_iso_ms(event.received_ms),
    }
    if isinstance(event, EventListing) and event.omitted:
        # A list leaves a large payload out; GET /v1/events/{id} has it whole.
        shown["data"] = None
        shown["data_omitted"] = True
    return shown


def _run_json(run: RunState) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "function_id": run.fn_id,
        "app_id": run.app_id,
        "status": _RUN_STATUS[run.status],
        "event_id": run.event_ids[0] if run.event_ids else None,
        "run_started_at": _time(run.started_ms),
        "ended_at": _time(run.ended_ms),
        "output": run.output if run.status in ENDED else None,
    }


def parse_limit(raw: str | None, default: int = _DEFAULT_LIMIT, maximum: int = _MAX_LIMIT) -> int:
    """A `limit` query parameter, within 1..maximum; raises ValueError when not an integer."""
    if not raw:
        return default
    return min(max(int(raw), 1), maximum)


def data_response(ctx: ApiContext, value: Any) -> Response:
    """A `/v1` answer: `{"data": value, "metadata": {...}}`."""
    metadata = {"fetched_at": format_iso_ms(ctx.clock.now_ms()), "cached_until": None}
    return JSONResponse({"data": value, "metadata": metadata})


async def _visible_event(ctx: ApiContext, event_id: str) -> Event | None:
    event = await ctx.stores.get_event(event_id)
    return event if event is not None and event.account_id == ctx.account else None


async def _visible_run(ctx: ApiContext, run_id: str) -> RunState | None:
    run = await ctx.stores.get_run(run_id)
    return run if run is not None and run.account_id == ctx.account else None


async def _list_events(ctx: ApiContext, request: Request) -> Response:
    try:
        limit = parse_limit(request.query_params.get("limit"))
    except ValueError:
        return api_error(400, "limit must be an integer")
    events = await ctx.stores.list_event_listings(
        ctx.account, name=request.query_params.get("name") or None, limit=limit
    )
    return data_response(ctx, [_event_json(event) for event in events])


async def _get_event(ctx: ApiContext, request: Request) -> Response:
    event_id = request.path_params["event_id"]
    event = await _visible_event(ctx, event_id)
    if event is None:
        return api_error(404, f"event not found: {event_id}")
    return data_response(ctx, _event_json(event))


async def _get_event_runs(ctx: ApiContext, request: Request) -> Response:
    event_id = request.path_params["event_id"]
    if await _visible_event(ctx, event_id) is None:
        return api_error(404, f"event not found: {event_id}")
    run_ids = await ctx.stores.runs_for_event(event_id)
    runs = [await ctx.stores.get_run(run_id) for run_id in run_ids]
    # A run linked to the event but not written yet is left out until it is.
    return data_response(ctx, [_run_json(run) for run in runs if run is not None])


async def _get_run(ctx: ApiContext, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    run = await _visible_run(ctx, run_id)
    if run is None:
        return api_error(404, f"run not found: {run_id}")
    return data_response(ctx, _run_json(run))


def v1_routes(ctx: ApiContext) -> list[BaseRoute]:
    """Each request reads the account of its signing key (any request, on a dev server)."""
    return [
        Route("/v1/events", acting(ctx, _list_events), methods=["GET"]),
        Route("/v1/events/{event_id}", acting(ctx, _get_event), methods=["GET"]),
        Route("/v1/events/{event_id}/runs", acting(ctx, _get_event_runs), methods=["GET"]),
        Route("/v1/runs/{run_id}", acting(ctx, _get_run), methods=["GET"]),
    ]
