"""Resolvers of the GraphQL read API: runs, their traces and outputs.

Root fields load a run of the request's account and return a view: a dict keyed by the schema's
field names, which graphql-core's default resolver reads. Fields that need another read (a run's
history) have resolvers of their own, so they cost nothing unless a query asks for them. A run
view also carries its RunState under "state", a key the schema does not expose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from headrace.api.context import ApiContext
from headrace.api.gql.trace import READABLE, View, root_span, span_output, time_of
from headrace.core.jsonutil import dumps_text
from headrace.messages.state import ENDED, RunState


def context_of(info: GraphQLResolveInfo) -> ApiContext:
    context: ApiContext = info.context
    return context


def output_text(run: RunState) -> str | None:
    """A run's return value or error object as JSON text; null until it ends."""
    return dumps_text(run.output) if run.status in ENDED else None


async def _load_run(info: GraphQLResolveInfo, run_id: str) -> RunState:
    context = context_of(info)
    run = await context.stores.get_run(run_id)
    if run is None or run.account_id != context.account:
        # An error, not only a null: the inngest-py test helper keeps polling on errors but
        # gives up at once on a run that is null without one.
        raise GraphQLError(f"run not found: {run_id}")
    return run


# --- runs ---


def _run_view(run: RunState) -> View:
    return {
        "state": run,
        "id": run.run_id,
        "appID": run.app_id,
        "functionID": run.fn_id,
        "status": run.status.upper(),
        "startedAt": time_of(run.started_ms),
        "endedAt": time_of(run.ended_ms),
        "triggerIDs": run.event_ids,
        "output": output_text(run),
    }


async def resolve_run(_root: None, info: GraphQLResolveInfo, runID: str) -> View:
    return _run_view(await _load_run(info, runID))


async def resolve_run_trace(
    parent: View, info: GraphQLResolveInfo, preview: bool | None = None
) -> View:
    # `preview` picks between Inngest's two trace builders; headrace has one, from history.
    run: RunState = parent["state"]
    return root_span(run, await context_of(info).stores.list_history(run.run_id))


async def resolve_run_trigger(_root: None, info: GraphQLResolveInfo, runID: str) -> View:
    run = await _load_run(info, runID)
    first: dict[str, Any] = run.events[0] if run.events else {}
    return {
        "eventName": first.get("name"),
        "IDs": run.event_ids,
        "payloads": [dumps_text(event) for event in run.events],
        "timestamp": time_of(first.get("ts") or run.started_ms),
    }


async def resolve_span_output(_root: None, info: GraphQLResolveInfo, outputID: str) -> View:
    run_id, _, entry_id = outputID.partition(":")
    run = await _load_run(info, run_id)
    for entry in await context_of(info).stores.list_history(run.run_id):
        if entry.entry_id == entry_id and entry.kind in READABLE:
            return span_output(entry)
    raise GraphQLError(f"output not found: {outputID}")


RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "Query": {
        "run": resolve_run,
        "runTrigger": resolve_run_trigger,
        "runTraceSpanOutputByID": resolve_span_output,
    },
    "FunctionRunV2": {"trace": resolve_run_trace},
}
