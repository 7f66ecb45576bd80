"""Mostly-valid requests for the routes whose checks a body drawn from the document alone
rarely passes: an app's sync and the Durable Endpoint checkpoints. Valid shapes with fuzzed
fields (ids, names, step data, durations, expressions, cron schedules, flow control), now and
then one field broken, so the fuzz reaches what comes after the checks: storing an app and its
functions, starting a run, memoizing steps, handing a run over."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from headrace.testing.api_requests import (
    CEL,
    CRON,
    DURATIONS,
    ODD_STRINGS,
    ApiRequest,
    Operation,
    any_json,
    break_field,
    requests,
)

# Loopback origins nothing listens on: no request the fuzz makes has the server call out.
ORIGINS = ["http://127.0.0.1:1", "http://localhost:1", "https://127.0.0.1:1"]
_JSON = (("content-type", "application/json"),)


@dataclass(frozen=True)
class Held:
    """Durable Endpoint runs the server holds, each still held by its request: one that the
    fuzz's `/steps` checkpoints go to, one for its `/async` checkpoints (whose `qi_id` names
    the request's call: partition 0, epoch 0, discovery 0, attempt 0)."""

    steps_run: str
    steps_fn: str
    steps_app: str
    async_run: str
    async_fn: str


def _mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid value three times in four, else an odd one. (Drawn by two booleans: `one_of`
    over repeated branches does not weigh them.)"""
    return st.builds(
        lambda good, bad, a, b: bad if a and b else good, valid, odd, st.booleans(), st.booleans()
    )


_name = _mostly(st.text(min_size=1, max_size=30), st.sampled_from(ODD_STRINGS[1:]))
_duration = _mostly(
    st.sampled_from(["1s", "30s", "1m", "1h", "2h30m"]),
    st.sampled_from(DURATIONS) | st.text(max_size=8),
)
_cel = _mostly(st.sampled_from(CEL[:2]), st.sampled_from(CEL[2:]) | st.text(max_size=30))
_limit = _mostly(st.integers(1, 100), st.integers(-1, 1_000) | st.integers())
_step_id = st.from_regex(r"\A[0-9a-f]{40}\Z") | st.text(min_size=1, max_size=40)


def _often_valid(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Three in four valid; else one field of it broken (wrong type or missing)."""
    broken = st.builds(
        lambda value, index, other: break_field(value, sorted(value)[index % len(value)], other),
        valid,
        st.integers(0, 50),
        any_json(4),
    )
    return _mostly(valid, broken)


def _request(method: str, target: str, body: Any) -> ApiRequest:
    return ApiRequest(method, target, _JSON, json.dumps(body).encode())


# --- sync ---------------------------------------------------------------------------------

_cron = _mostly(st.sampled_from(CRON[:2]), st.sampled_from(CRON[2:]) | st.text(max_size=20))
_triggers = st.one_of(
    st.builds(lambda e: [{"event": e}], _name),
    st.builds(lambda c: [{"cron": c}], _cron),
    st.builds(lambda e, x: [{"event": e, "expression": x}], _name, _cel),
)
_FLOW: dict[str, st.SearchStrategy[Any]] = {
    "concurrency": st.one_of(
        _limit,
        st.lists(
            st.fixed_dictionaries(
                {"limit": _limit},
                optional={"key": _cel, "scope": st.sampled_from(["fn", "env", "account"])},
            ),
            max_size=2,
        ),
    ),
    "rateLimit": st.fixed_dictionaries(
        {"limit": _limit, "period": _duration}, optional={"key": _cel}
    ),
    "throttle": st.fixed_dictionaries(
        {"limit": _limit, "period": _duration}, optional={"burst": _limit, "key": _cel}
    ),
    "debounce": st.fixed_dictionaries(
        {"period": _duration}, optional={"key": _cel, "timeout": _duration}
    ),
    "batchEvents": st.fixed_dictionaries(
        {"maxSize": _limit, "timeout": _duration}, optional={"key": _cel}
    ),
    "cancel": st.lists(
        st.fixed_dictionaries({"event": _name}, optional={"if": _cel, "timeout": _duration}),
        max_size=2,
    ),
    "idempotency": _cel,
    "priority": st.fixed_dictionaries({"run": _cel}),
    "timeouts": st.fixed_dictionaries({}, optional={"start": _duration, "finish": _duration}),
    "singleton": st.fixed_dictionaries(
        {"mode": _mostly(st.sampled_from(["skip", "cancel"]), _name)}, optional={"key": _cel}
    ),
}
# One or two kinds of flow control per function, or none: each is checked on its own.
_flow = st.lists(st.sampled_from(sorted(_FLOW)), max_size=2, unique=True).flatmap(
    lambda kinds: st.fixed_dictionaries({kind: _FLOW[kind] for kind in kinds})
)


def _function(url: str, fn_id: str, triggers: Any, attempts: int, flow: Any) -> dict[str, Any]:
    step_url = f"{url}?fnId={quote(fn_id, safe='')}&step=step"
    step = {"id": "step", "name": "step", "runtime": {"type": "http", "url": step_url}}
    return {
        "id": fn_id,
        "name": fn_id,
        "triggers": triggers,
        "steps": {"step": {**step, "retries": {"attempts": attempts}}},
        **flow,
    }


def _sync_body(origin: str, app: str, functions: list[Any]) -> dict[str, Any]:
    url = f"{origin}/api/inngest"
    made = [_function(url, *fn) for fn in functions]
    return {"url": url, "appName": app, "sdk": "fuzz", "framework": "fuzz", "functions": made}


def _sync() -> st.SearchStrategy[ApiRequest]:
    function = st.tuples(_name, _triggers, _mostly(st.integers(0, 20), st.integers()), _flow)
    body = st.builds(
        _sync_body,
        st.sampled_from(ORIGINS),
        # Never the seeded app's name: a sync of it without its function would archive it.
        _name.map(lambda name: "fz-" + name),
        st.lists(function, min_size=1, max_size=3),
    )
    return _often_valid(body).map(lambda b: _request("POST", "/fn/register", b))


# --- ops ----------------------------------------------------------------------------------

_step_run = st.fixed_dictionaries(
    {"op": st.just("StepRun"), "id": _step_id, "data": any_json(8)},
    optional={"name": _name, "displayName": _name, "timing": any_json(3)},
)
_other_ops = st.one_of(
    st.fixed_dictionaries(
        {"op": st.just("Sleep"), "id": _step_id, "name": _duration},
        optional={"opts": st.fixed_dictionaries({"duration": _duration})},
    ),
    st.fixed_dictionaries(
        {"op": st.just("WaitForEvent"), "id": _step_id},
        optional={
            "opts": st.fixed_dictionaries(
                {"event": _name, "timeout": _duration}, optional={"if": _cel}
            )
        },
    ),
    st.fixed_dictionaries(
        {"op": st.just("WaitForSignal"), "id": _step_id},
        optional={"opts": st.fixed_dictionaries({"signal": _name, "timeout": _duration})},
    ),
    st.fixed_dictionaries(
        {"op": st.just("InvokeFunction"), "id": _step_id},
        optional={
            "opts": st.fixed_dictionaries(
                {"function_id": _name}, optional={"payload": any_json(4), "timeout": _duration}
            )
        },
    ),
    st.fixed_dictionaries(
        {"op": st.sampled_from(["StepError", "StepFailed"]), "id": _step_id},
        optional={"error": st.fixed_dictionaries({"name": _name, "message": _name})},
    ),
    st.fixed_dictionaries(
        {"op": st.just("RunComplete"), "id": _step_id},
        optional={
            "data": st.fixed_dictionaries(
                {"status": st.integers(100, 599), "body": st.text(max_size=30)},
                optional={"headers": st.dictionaries(_name, st.text(max_size=20), max_size=2)},
            )
        },
    ),
    st.fixed_dictionaries({"op": st.just("StepPlanned"), "id": _step_id}),
)


# --- endpoint checkpoints ------------------------------------------------------------------

_ulid = st.from_regex(r"\A[0-7][0-9A-HJKMNP-TV-Z]{25}\Z")
_method = _mostly(st.sampled_from(["GET", "POST", "PUT", "DELETE"]), st.text(max_size=6))


def _new_run() -> st.SearchStrategy[ApiRequest]:
    data = st.fixed_dictionaries(
        {
            "domain": _mostly(st.sampled_from(ORIGINS), st.text(max_size=20)),
            "method": _method,
            "path": st.text(max_size=20).map(lambda p: "/" + p),
        },
        optional={
            "fn": _name,
            "body": st.text(max_size=40),
            "content_type": st.sampled_from(["application/json", "text/plain"]),
            "query_params": st.text(max_size=20),
            "ip": st.text(max_size=15),
        },
    )
    event = st.fixed_dictionaries(
        {"name": st.just("inngest/http.request"), "data": data},
        optional={"id": _name, "ts": st.integers(0, 2**45)},
    )
    body = st.fixed_dictionaries(
        {"run_id": _ulid, "event": event},
        optional={
            "steps": st.lists(_step_run | _other_ops, max_size=4),
            "request_version": st.integers(-1, 3),
            "retries": _mostly(st.integers(0, 20), st.integers(-1, 25)),
            "ts": st.integers(0, 2**45),
        },
    )
    return _often_valid(body).map(lambda b: _request("POST", "/v1/checkpoint", b))


def _sync_steps(held: Held) -> st.SearchStrategy[ApiRequest]:
    # StepRun only: any other op is the request's answer, which hands the run over (or ends
    # it), and then every later checkpoint of it is refused (409); new runs draw those.
    body = st.fixed_dictionaries(
        {
            "run_id": st.just(held.steps_run),
            "fn_id": st.just(held.steps_fn),
            "app_id": st.just(held.steps_app),
            "steps": st.lists(_step_run, max_size=4),
        },
        optional={"ts": st.integers(0, 2**45)},
    )
    target = f"/v1/checkpoint/{held.steps_run}/steps"
    return _often_valid(body).map(lambda b: _request("POST", target, b))


def _async_steps(held: Held) -> st.SearchStrategy[ApiRequest]:
    planned = st.fixed_dictionaries({"op": st.just("StepPlanned"), "id": _step_id})
    body = st.fixed_dictionaries(
        {
            "run_id": st.just(held.async_run),
            "fn_id": st.just(held.async_fn),
            "qi_id": _mostly(st.just("0:0:0:0:"), st.text(max_size=12)),
            "steps": st.lists(_step_run | planned, max_size=4),
        },
        optional={
            "request_id": _name,
            "generation_id": st.integers(0, 10),
            "request_started_at": st.integers(0, 2**45),
            "ts": st.integers(0, 2**45),
        },
    )
    target = f"/v1/checkpoint/{held.async_run}/async"
    return _often_valid(body).map(lambda b: _request("POST", target, b))


def deep_requests(op: Operation, held: Held | None) -> st.SearchStrategy[ApiRequest] | None:
    """Mostly-valid requests for `op`, or None for a route that needs none."""
    if op.method != "post":
        return None
    if op.path == "/fn/register":
        return _sync()
    if op.path == "/v1/checkpoint":
        return _new_run()
    if held is None:
        return None
    if op.path == "/v1/checkpoint/{run_id}/steps":
        return _sync_steps(held)
    if op.path == "/v1/checkpoint/{run_id}/async":
        return _async_steps(held)
    return None


def fuzz_requests(
    doc: dict[str, Any], op: Operation, known: list[str], held: Held | None
) -> st.SearchStrategy[ApiRequest]:
    """What the fuzz sends to `op`: requests drawn from the document (api_requests.py) and,
    for the routes above, two in three mostly-valid ones."""
    drawn = requests(doc, op, known)
    deep = deep_requests(op, held)
    return drawn if deep is None else st.one_of(deep, deep, drawn)
