"""Durable Endpoints (npm `inngest` 4.x `inngest.endpoint`): a handler the app serves on its own
route runs as a run in its own HTTP request, and reports to the server as it goes (sync
checkpointing, 4.24.0 `components/InngestCommHandler.js` `handleSyncRequest`,
`components/execution/engine.js` `checkpoint`):

- `POST /v1/checkpoint` creates the run, with its first steps (`api/api.js` `checkpointNewRun`):
  `{run_id, event, steps, ts, request_version, retries}`, `event` being `inngest/http.request` with
  the request (`createHttpEvent`: domain, method, path, query_params, body, content_type, ip,
  fn); the answer is `{data: {run_id, fn_id, app_id, token, realtime_token}}`.
- `POST /v1/checkpoint/{run_id}/steps` adds steps (`checkpointSteps`): `{run_id, fn_id, app_id,
  steps}`; the return comes as a `RunComplete` op whose data is the response
  (`{status, headers, body}`).
- A step error, a sleep or a wait hands the run to the server: the SDK answers its request with
  a redirect to `/v1/http/runs/{run_id}/output?token=` and the server calls the endpoint from
  then on, as Inngest's driver does (`pkg/execution/driver/httpv2/httpv2.go` `sync`): the
  request again (method, URL with its query, body, content type) with `X-Run-ID` and
  `X-Inngest-Signature`, which the SDK takes for a call (`isInngestReq`), reading the run's
  events and memos through the API (`use_api`).

The function and app of an endpoint are made on the fly, with ids derived from the domain and
the function's slug (`fn`, or "METHOD /path"), as Inngest's are (`checkpoint_types.go`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from headrace.core.errors import InputError
from headrace.core.jsonutil import decode
from headrace.messages.state import AppRecord, FunctionRecord
from headrace.protocol.ops import Op, decode_ops
from headrace.protocol.registration import DEFAULT_RETRIES, MAX_RETRIES

HTTP_REQUEST_EVENT = "inngest/http.request"
ENDPOINT_RUNTIME = "sync"
# A run its endpoint's request still holds this long after it started fails: the request died
# before it finished the run or handed it over. Inngest means to do this and names the time
# (`pkg/api/apiv1/checkpoint.go` `CheckpointNewRun`: "SHOULD automatically have a timeout after
# 60 minutes ... marked as FAILED if we do not get a call to finalize them").
ENDPOINT_TIMEOUT_MS = 60 * 60_000
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_METHOD = re.compile(r"^[A-Z]{1,16}$")
_DOMAIN = re.compile(r"^https?://[^/?#\s]+$")


class HttpRequestData(msgspec.Struct, kw_only=True):
    domain: str
    method: str
    path: str
    fn: str = ""
    ip: str = ""
    content_type: str = ""
    query_params: str = ""
    body: str = ""


class HttpRequestEvent(msgspec.Struct, kw_only=True):
    name: str
    data: HttpRequestData
    id: str | None = None
    ts: int | None = None


class NewRun(msgspec.Struct, kw_only=True):
    """The body of `POST /v1/checkpoint` (Inngest `CheckpointNewRunRequest`)."""

    run_id: str
    event: HttpRequestEvent
    steps: list[dict[str, Any]] = []  # read by `read_new_run`
    request_version: int | None = None
    retries: int | None = None
    ts: int | None = None


class SyncSteps(msgspec.Struct, kw_only=True):
    """The body of `POST /v1/checkpoint/{run_id}/steps` (Inngest `checkpointSyncSteps`)."""

    run_id: str
    fn_id: str
    app_id: str
    steps: list[dict[str, Any]]  # read by `read_sync_steps`
    ts: int | None = None


def read_new_run(body: bytes) -> tuple[NewRun, list[Op]]:
    """The new run and its first steps; InputError (400) for a body that cannot start one."""
    try:
        new = decode(body, NewRun)
        steps = decode_ops(new.steps)
    except msgspec.DecodeError as err:
        raise InputError(f"the body is not a new endpoint run: {err}") from None
    if not _ULID.match(new.run_id):
        raise InputError(f"run_id {new.run_id!r} is not a ULID")
    if new.event.name != HTTP_REQUEST_EVENT:
        raise InputError(f"the event must be {HTTP_REQUEST_EVENT!r}, got {new.event.name!r}")
    data = new.event.data
    if not _DOMAIN.match(data.domain):
        raise InputError(f"event.data.domain {data.domain!r} is not an http(s) origin")
    if not _METHOD.match(data.method):
        raise InputError(f"event.data.method {data.method!r} is not an HTTP method")
    if not data.path.startswith("/"):
        raise InputError(f"event.data.path {data.path!r} must start with /")
    if new.retries is not None and not 0 <= new.retries <= MAX_RETRIES:
        raise InputError(f"retries must be 0 to {MAX_RETRIES}, got {new.retries}")
    _check_steps(steps)
    return new, steps


def read_sync_steps(run_id: str, body: bytes) -> tuple[SyncSteps, list[Op]]:
    try:
        checkpoint = decode(body, SyncSteps)
        steps = decode_ops(checkpoint.steps)
    except msgspec.DecodeError as err:
        raise InputError(f"the body is not a checkpoint of steps: {err}") from None
    if checkpoint.run_id != run_id:
        raise InputError(f"the body's run_id {checkpoint.run_id!r} is not the URL's {run_id!r}")
    _check_steps(steps)
    return checkpoint, steps


def _check_steps(steps: list[Op]) -> None:
    if any(not op.id for op in steps):
        raise InputError("every checkpointed step needs its id")


def endpoint_records(account_id: str, new: NewRun, now_ms: int) -> tuple[AppRecord, FunctionRecord]:
    """The app (one per domain) and function (one per slug) a new endpoint run belongs to."""
    data = new.event.data
    app_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account_id}\n{data.domain}"))
    slug = data.fn or f"{data.method} {data.path}"
    fn_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app_id}\n{slug}"))
    retries = DEFAULT_RETRIES if new.retries is None else new.retries
    config: dict[str, Any] = {
        "id": fn_id,
        "name": slug,
        "triggers": [],
        "steps": {
            "step": {
                "id": "step",
                "name": slug,
                "runtime": {"type": ENDPOINT_RUNTIME, "url": data.domain, "method": data.method},
                "retries": {"attempts": retries},
            }
        },
    }
    app = AppRecord(
        app_id=app_id, account_id=account_id, url=data.domain, synced_ms=now_ms, function_ids=[]
    )
    fn = FunctionRecord(fn_id=fn_id, account_id=account_id, app_id=app_id, name=slug, config=config)
    return app, fn


def endpoint_timer_id(run_id: str) -> str:
    return f"{run_id}:timeout:endpoint"


@dataclass(frozen=True)
class EndpointRequest:
    """The request the engine makes to go on with an endpoint's run: the first one again."""

    method: str
    url: str
    body: bytes
    content_type: str


def endpoint_request(
    fn_config: dict[str, Any], events: list[dict[str, Any]]
) -> EndpointRequest | None:
    """None for a function the app serves (called with the engine's own request)."""
    try:
        runtime = fn_config["steps"]["step"]["runtime"]
        if runtime["type"] != ENDPOINT_RUNTIME:
            return None
        data = msgspec.convert(events[0]["data"], HttpRequestData)
    except (KeyError, TypeError, IndexError, msgspec.ValidationError):
        return None
    query = f"?{data.query_params}" if data.query_params else ""
    return EndpointRequest(
        method=data.method,
        url=f"{data.domain}{data.path}{query}",
        body=data.body.encode(),
        content_type=data.content_type or "application/json",
    )
