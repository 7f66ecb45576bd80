"""Mutations of `/v0/gql`: the run controls, under Inngest's names where it has them
(`cancelRun`, `rerun`, `invokeFunction`), plus `replayRun` and `createCancellation`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphql import GraphQLError, GraphQLResolveInfo

from headrace.api.context import ApiContext
from headrace.api.controls import RunControls
from headrace.core.durations import DurationError, format_iso_ms, parse_iso_ms
from headrace.core.errors import InputError

T = TypeVar("T")


async def _control(info: GraphQLResolveInfo, act: Callable[[RunControls, str], Awaitable[T]]) -> T:
    context: ApiContext = info.context
    if context.controls is None:
        raise GraphQLError("run controls are not available on this server")
    try:
        return await act(context.controls, context.account)
    except InputError as err:
        raise GraphQLError(str(err)) from None


def _time_ms(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_iso_ms(value)
    except DurationError as err:
        raise GraphQLError(f"{field}: {err}") from None


async def cancel_run(_root: None, info: GraphQLResolveInfo, runID: str) -> dict[str, Any]:
    run = await _control(info, lambda c, account: c.cancel(account, runID))
    return {
        "id": run.run_id,
        "functionID": run.fn_id,
        "status": run.status.upper(),
        "startedAt": format_iso_ms(run.started_ms) if run.started_ms else None,
        "finishedAt": format_iso_ms(run.ended_ms) if run.ended_ms else None,
        "output": None,
    }


async def rerun(
    _root: None, info: GraphQLResolveInfo, runID: str, fromStep: dict[str, Any] | None = None
) -> str:
    step = str((fromStep or {}).get("stepID") or "")
    return await _control(info, lambda c, account: c.rerun(account, runID, step))


async def replay_run(_root: None, info: GraphQLResolveInfo, runID: str) -> str:
    return await _control(info, lambda c, account: c.replay(account, runID))


async def create_cancellation(
    _root: None, info: GraphQLResolveInfo, input: dict[str, Any]
) -> dict[str, Any]:
    before = _time_ms(input["startedBefore"], "startedBefore")
    assert before is not None
    cancellation = await _control(
        info,
        lambda c, account: c.cancel_bulk(
            account,
            fn_id=input["functionID"],
            app_id=input.get("appID") or "",
            started_after_ms=_time_ms(input.get("startedAfter"), "startedAfter"),
            started_before_ms=before,
            expression=input.get("if"),
        ),
    )
    after = cancellation.started_after_ms
    return {
        "id": cancellation.cancellation_id,
        "functionID": cancellation.fn_id,
        "startedAfter": format_iso_ms(after) if after is not None else None,
        "startedBefore": format_iso_ms(cancellation.started_before_ms),
        "if": cancellation.expression,
        "cancelledRunIDs": cancellation.run_ids,
    }


async def invoke_function(
    _root: None,
    info: GraphQLResolveInfo,
    functionSlug: str,
    data: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
) -> bool:
    if data is not None and not isinstance(data, dict):
        raise GraphQLError("data must be an object")
    await _control(info, lambda c, account: c.invoke(account, functionSlug, data or {}, user))
    return True


MUTATIONS: dict[str, Callable[..., Any]] = {
    "cancelRun": cancel_run,
    "rerun": rerun,
    "replayRun": replay_run,
    "createCancellation": create_cancellation,
    "invokeFunction": invoke_function,
}
