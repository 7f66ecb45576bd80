"""`/v1` run controls, as Inngest's REST API has them: `DELETE /v1/runs/{id}` cancels a run,
`POST /v1/cancellations` cancels runs in bulk, `POST /v1/signals` resumes the run waiting for a
signal (step.waitForSignal)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext, acting, api_error
from headrace.api.v1 import data_response
from headrace.core.durations import DurationError, format_iso_ms, parse_iso_ms
from headrace.core.errors import InputError
from headrace.core.jsonutil import loads


def _time_ms(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{field} must be an RFC 3339 time")
    try:
        return parse_iso_ms(value)
    except DurationError as err:
        raise InputError(f"{field}: {err}") from None


def _cancellation_request(raw: bytes) -> dict[str, Any]:
    try:
        body = loads(raw)
    except ValueError as err:
        raise InputError(f"invalid cancellation request: {err}") from None
    if not isinstance(body, dict):
        raise InputError("invalid cancellation request: the body must be a JSON object")
    for field in ("app_id", "function_id"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise InputError(f"{field} is required")
    if body.get("if") is not None and not isinstance(body["if"], str):
        raise InputError("if must be a string")
    return body


async def _cancel_run(ctx: ApiContext, request: Request) -> Response:
    if ctx.controls is None:
        return api_error(501, "run controls are not available on this server")
    try:
        await ctx.controls.cancel(ctx.account, request.path_params["run_id"])
    except InputError as err:
        return api_error(err.status, str(err))
    return JSONResponse({"data": {"ok": True}})


async def _create_cancellation(ctx: ApiContext, request: Request) -> Response:
    if ctx.controls is None:
        return api_error(501, "run controls are not available on this server")
    try:
        body = _cancellation_request(await request.body())
        before = _time_ms(body, "started_before")
        if before is None:
            raise InputError("started_before is required")
        cancellation = await ctx.controls.cancel_bulk(
            ctx.account,
            fn_id=body["function_id"],
            app_id=body["app_id"],
            started_after_ms=_time_ms(body, "started_after"),
            started_before_ms=before,
            expression=body.get("if"),
        )
    except InputError as err:
        return api_error(err.status, str(err))
    after = cancellation.started_after_ms
    return JSONResponse(
        {
            "data": {
                "id": cancellation.cancellation_id,
                "app_id": cancellation.app_id,
                "function_id": cancellation.fn_id,
                "started_after": format_iso_ms(after) if after is not None else None,
                "started_before": format_iso_ms(cancellation.started_before_ms),
                "if": cancellation.expression,
                "cancelled_run_ids": cancellation.run_ids,
            }
        }
    )


# A signal's data is stored as the step's memo: no larger than an event.
MAX_SIGNAL_BYTES = 3 * 1024 * 1024


def _signal_request(raw: bytes) -> tuple[str, Any]:
    if len(raw) > MAX_SIGNAL_BYTES:
        raise InputError(f"the signal is larger than {MAX_SIGNAL_BYTES} bytes", status=413)
    try:
        body = loads(raw)
    except ValueError as err:
        raise InputError(f"invalid signal data: {err}") from None
    if not isinstance(body, dict):
        raise InputError("invalid signal data: the body must be a JSON object")
    signal = body.get("signal")
    if not isinstance(signal, str) or not signal:
        raise InputError("signal is required: the name of the signal to send")
    return signal, body.get("data")


async def _send_signal(ctx: ApiContext, request: Request) -> Response:
    """Answered as Inngest's apiv1 `receiveSignal`: the resumed run's id, or 404 "No signal
    found" when no run waits for the signal (which the SDK's sendSignal reads as no run)."""
    if ctx.controls is None:
        return api_error(501, "run controls are not available on this server")
    try:
        signal, data = _signal_request(await request.body())
    except InputError as err:
        return api_error(err.status, str(err))
    run_id = await ctx.controls.signal(ctx.account, signal, data)
    if run_id is None:
        return api_error(404, "No signal found")
    return data_response(ctx, {"run_id": run_id})


def v1_control_routes(ctx: ApiContext) -> list[BaseRoute]:
    """Each request acts on the account of its signing key (any request, on a dev server)."""
    return [
        Route("/v1/runs/{run_id}", acting(ctx, _cancel_run), methods=["DELETE"]),
        Route("/v1/cancellations", acting(ctx, _create_cancellation), methods=["POST"]),
        Route("/v1/signals", acting(ctx, _send_signal), methods=["POST"]),
    ]
