"""Resolvers of the GraphQL read API: events, the event stream, and the runs events started.

As Inngest's dev server (inngest/inngest pkg/coreapi/graph/resolvers/stream.go, events.go):
`stream` lists the newest events with the runs each started, `events` the newest 51, and an
event's `payload` is its `data` as JSON text while `raw` is the event as it was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from headrace.api.gql.resolvers import context_of, output_text
from headrace.api.gql.trace import View, time_of
from headrace.core.jsonutil import dumps_text
from headrace.engine import system_events
from headrace.messages.model import Event, EventListing

# Inngest's cqrs.MaxEvents: how many events `events` lists.
EVENTS_LISTED = 51
# The most a `stream` query may ask for.
STREAM_LIMIT_MAX = 1000


def _event_view(event: Event) -> View:
    return {
        "id": event.internal_id,
        "externalID": event.payload.get("id") or None,
        "name": event.name,
        "createdAt": time_of(event.received_ms),
        "payload": dumps_text(event.payload.get("data", {})),
        "raw": dumps_text(event.payload),
    }


async def resolve_event(_root: None, info: GraphQLResolveInfo, query: dict[str, Any]) -> View:
    context = context_of(info)
    event_id: str = query["eventId"]
    event = await context.stores.get_event(event_id)
    if event is None or event.account_id != context.account:
        # As for runs: an error keeps the test helper polling until ingest has stored the event.
        raise GraphQLError(f"event not found: {event_id}")
    return _event_view(event)


async def resolve_events(
    _root: None, info: GraphQLResolveInfo, query: dict[str, Any]
) -> list[View]:
    context = context_of(info)
    events = await context.stores.list_events(context.account, limit=EVENTS_LISTED, internal=False)
    return [_event_view(event) for event in events]


async def resolve_stream(
    _root: None, info: GraphQLResolveInfo, query: dict[str, Any]
) -> list[View]:
    limit: int = query["limit"]
    if not 0 < limit <= STREAM_LIMIT_MAX:
        raise GraphQLError(f"limit must be 1 to {STREAM_LIMIT_MAX}, got {limit}")
    context = context_of(info)
    internal = bool(query.get("includeInternalEvents"))
    # Listings: a stream item shows no payload but a cron tick's schedule, which is small.
    events = await context.stores.list_event_listings(
        context.account, limit=limit, internal=internal
    )
    return [_stream_item(event) for event in events]


def _stream_item(event: EventListing) -> View:
    cron = event.name == system_events.CRON
    data = event.payload.get("data")
    schedule = data.get("cron") if cron and isinstance(data, dict) else None
    return {
        "id": event.internal_id,
        # A cron tick shows its schedule, as Inngest's stream does.
        "trigger": schedule if isinstance(schedule, str) else event.name,
        "type": "CRON" if cron else "EVENT",
        "createdAt": time_of(event.received_ms),
    }


async def resolve_event_runs(parent: View, info: GraphQLResolveInfo) -> list[View]:
    stores = context_of(info).stores
    run_ids = await stores.runs_for_event(parent["id"])
    runs = await asyncio.gather(*(stores.get_run(run_id) for run_id in run_ids))
    # A run linked to the event but not written yet is left out until it is.
    return [
        {
            "id": run.run_id,
            "functionID": run.fn_id,
            "status": run.status.upper(),
            "startedAt": time_of(run.started_ms),
            "finishedAt": time_of(run.ended_ms),
            "output": output_text(run),
        }
        for run in runs
        if run is not None
    ]


async def resolve_run_function(parent: View, info: GraphQLResolveInfo) -> View | None:
    context = context_of(info)
    fn = await context.stores.get_function(context.account, parent["functionID"])
    if fn is None:
        return None
    return {"id": fn.fn_id, "slug": fn.fn_id, "name": fn.name, "appID": fn.app_id}


EVENT_RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "Query": {"event": resolve_event, "events": resolve_events, "stream": resolve_stream},
    "Event": {"functionRuns": resolve_event_runs},
    "StreamItem": {"runs": resolve_event_runs},
    "FunctionRun": {"function": resolve_run_function},
}
