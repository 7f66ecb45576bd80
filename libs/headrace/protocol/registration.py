"""Reading an app's sync (`POST /fn/register`, protocol §1) and checking its functions."""

from __future__ import annotations

from typing import Any

import msgspec

from headrace.core.cron import MAX_JITTER_MS, MIN_JITTER_MS, CronError, parse_cron
from headrace.core.durations import DurationError, parse_duration_ms
from headrace.core.errors import InputError
from headrace.core.jsonutil import loads
from headrace.expressions import validate as validate_expression
from headrace.flow import config as flow
from headrace.protocol.urls import url_problem

MAX_RETRIES = 20
DEFAULT_RETRIES = 4
MAX_BATCH_SIZE = 100
BATCH_TIMEOUT_MS = (1_000, 60_000)


class SyncRequest(msgspec.Struct, kw_only=True):
    app_id: str
    url: str
    sdk: str
    framework: str
    functions: list[dict[str, Any]]


def parse_sync(body: bytes) -> SyncRequest:
    """Read the body; keys are matched case-insensitively (Python writes `appname`)."""
    try:
        raw = loads(body)
    except msgspec.DecodeError as err:
        raise InputError(f"the sync body is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise InputError("the sync body must be a JSON object")
    fields = {str(k).lower(): v for k, v in raw.items()}
    # An in-band sync answer names the app `app_id` (inngest-js `inBandRegisterBody`).
    app_id = fields.get("appname") or fields.get("app_id")
    url = fields.get("url")
    functions = fields.get("functions") or []
    if not isinstance(app_id, str) or not app_id:
        raise InputError("the sync body has no appName")
    if not isinstance(url, str) or not url:
        raise InputError("the sync body has no url")
    if (problem := url_problem(url)) is not None:
        raise InputError(f"the sync body's url {problem}")
    if not isinstance(functions, list) or not all(isinstance(f, dict) for f in functions):
        raise InputError("the sync body's functions must be a list of objects")
    for fn in functions:
        check_function(fn)
    return SyncRequest(
        app_id=app_id,
        url=url,
        sdk=str(fields.get("sdk") or ""),
        framework=str(fields.get("framework") or ""),
        functions=functions,
    )


def check_function(fn: dict[str, Any]) -> None:
    """Refuse configuration that cannot work, naming the function and the field."""
    fn_id = fn.get("id")
    if not isinstance(fn_id, str) or not fn_id:
        raise InputError("a function has no id")

    def fail(field: str, problem: str) -> InputError:
        return InputError(f"function {fn_id!r}: {field}: {problem}")

    triggers = fn.get("triggers") or []
    if not isinstance(triggers, list) or not triggers:
        raise fail("triggers", "at least one trigger is required")
    for i, trigger in enumerate(triggers):
        if not isinstance(trigger, dict) or not (trigger.get("event") or trigger.get("cron")):
            raise fail(f"triggers[{i}]", "needs an event or a cron")
        _check_expression(trigger.get("expression"), f"triggers[{i}].expression", fail)
    url = step_url(fn)
    if url is None:
        raise fail("steps.step.runtime.url", "missing")
    if (problem := url_problem(url)) is not None:
        raise fail("steps.step.runtime.url", problem)
    retries = retries_of(fn)
    if not 0 <= retries <= MAX_RETRIES:
        raise fail("steps.step.retries.attempts", f"must be 0 to {MAX_RETRIES}, got {retries}")
    batch = fn.get("batchEvents")
    if batch is not None:
        if not isinstance(batch, dict):
            raise fail("batchEvents", "must be an object")
        size = batch.get("maxSize")
        if not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
            raise fail("batchEvents.maxSize", f"must be 1 to {MAX_BATCH_SIZE}, got {size!r}")
        _check_duration(batch.get("timeout"), "batchEvents.timeout", fail, BATCH_TIMEOUT_MS)
        _check_expression(batch.get("key"), "batchEvents.key", fail)
        _check_expression(batch.get("if"), "batchEvents.if", fail)
    cancels = fn.get("cancel") or []
    if not isinstance(cancels, list) or len(cancels) > 5:
        raise fail("cancel", "at most 5 entries")
    for i, cancel in enumerate(cancels):
        if not isinstance(cancel, dict) or not isinstance(cancel.get("event"), str):
            raise fail(f"cancel[{i}].event", "required")
        _check_expression(cancel.get("if"), f"cancel[{i}].if", fail)
        _check_duration(cancel.get("timeout"), f"cancel[{i}].timeout", fail)
    _check_run_controls(fn, fail)
    _check_flow(fn, fail)


# --- flow control (concurrency, throttle, rateLimit, priority, timeouts) ---------------------


def _check_flow(fn: dict[str, Any], fail: Any) -> None:
    entries = flow.concurrency_entries(fn)
    if len(entries) > flow.MAX_CONCURRENCY_LIMITS:
        raise fail(
            "concurrency", f"at most {flow.MAX_CONCURRENCY_LIMITS} limits, got {len(entries)}"
        )
    for i, entry in enumerate(entries):
        field = f"concurrency[{i}]"
        if not isinstance(entry, dict):
            raise fail(field, "must be an object")
        _check_int(entry.get("limit"), f"{field}.limit", fail, flow.CONCURRENCY_LIMIT_RANGE)
        scope = entry.get("scope") or "fn"
        if scope not in flow.SCOPES:
            raise fail(f"{field}.scope", f"must be one of {', '.join(flow.SCOPES)}, got {scope!r}")
        if scope != "fn" and not entry.get("key"):
            raise fail(f"{field}.key", f"required when the scope is {scope!r}")
        _check_expression(entry.get("key"), f"{field}.key", fail)
    for name, periods in (
        ("throttle", flow.THROTTLE_PERIOD_MS),
        ("rateLimit", flow.RATE_LIMIT_PERIOD_MS),
    ):
        spec = fn.get(name)
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise fail(name, "must be an object")
        _check_int(spec.get("limit"), f"{name}.limit", fail, (1, 2**31 - 1))
        if spec.get("period") in (None, ""):
            raise fail(f"{name}.period", "required")
        _check_duration(spec.get("period"), f"{name}.period", fail, periods)
        if name == "throttle" and spec.get("burst") is not None:
            _check_int(spec.get("burst"), "throttle.burst", fail, (0, 2**31 - 1))
        _check_expression(spec.get("key"), f"{name}.key", fail)
    priority = fn.get("priority")
    if priority is not None:
        if not isinstance(priority, dict):
            raise fail("priority", "must be an object")
        _check_expression(priority.get("run"), "priority.run", fail)
    timeouts = fn.get("timeouts")
    if timeouts is not None:
        if not isinstance(timeouts, dict):
            raise fail("timeouts", "must be an object")
        for which in ("start", "finish"):
            _check_duration(timeouts.get(which), f"timeouts.{which}", fail)


def _check_int(value: object, field: str, fail: Any, bounds: tuple[int, int]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise fail(field, f"must be an integer from {bounds[0]} to {bounds[1]}, got {value!r}")


def _check_expression(expr: object, field: str, fail: Any) -> None:
    if expr in (None, ""):
        return
    if not isinstance(expr, str):
        raise fail(field, "must be a string")
    problem = validate_expression(expr)
    if problem is not None:
        raise fail(field, f"does not compile: {problem}")


def _check_duration(
    value: object, field: str, fail: Any, bounds_ms: tuple[int, int] | None = None
) -> None:
    if value in (None, ""):
        return
    try:
        ms = parse_duration_ms(str(value))
    except DurationError as err:
        raise fail(field, str(err)) from None
    if bounds_ms is not None and not bounds_ms[0] <= ms <= bounds_ms[1]:
        low, high = (b // 1000 for b in bounds_ms)
        raise fail(field, f"must be {low}s to {high}s, got {value!r}")


def step_url(fn: dict[str, Any]) -> str | None:
    try:
        url = fn["steps"]["step"]["runtime"]["url"]
    except (KeyError, TypeError):
        return None
    return url if isinstance(url, str) and url else None


def retries_of(fn: dict[str, Any]) -> int:
    try:
        value = fn["steps"]["step"]["retries"]["attempts"]
    except (KeyError, TypeError):
        return DEFAULT_RETRIES
    return value if isinstance(value, int) else DEFAULT_RETRIES


# --- debounce, idempotency, singleton, cron (Inngest's limits: pkg/consts, pkg/inngest) ---

DEBOUNCE_PERIOD_MS = (1_000, 7 * 86_400_000)
SINGLETON_MODES = ("skip", "cancel")


def _check_run_controls(fn: dict[str, Any], fail: Any) -> None:
    debounce = fn.get("debounce")
    if debounce is not None:
        if not isinstance(debounce, dict):
            raise fail("debounce", "must be an object")
        if debounce.get("period") in (None, ""):
            raise fail("debounce.period", "required")
        _check_duration(debounce.get("period"), "debounce.period", fail, DEBOUNCE_PERIOD_MS)
        _check_duration(debounce.get("timeout"), "debounce.timeout", fail)
        _check_expression(debounce.get("key"), "debounce.key", fail)
    _check_expression(fn.get("idempotency"), "idempotency", fail)
    singleton = fn.get("singleton")
    if singleton is not None:
        if not isinstance(singleton, dict):
            raise fail("singleton", "must be an object")
        mode = singleton.get("mode")
        if mode not in SINGLETON_MODES:
            raise fail("singleton.mode", f"must be 'skip' or 'cancel', got {mode!r}")
        _check_expression(singleton.get("key"), "singleton.key", fail)
    if fn.get("batchEvents") is not None:
        for other in ("debounce", "singleton"):
            if fn.get(other) is not None:
                raise fail(other, "cannot be combined with batchEvents")
    seen: set[str] = set()
    for i, trigger in enumerate(fn.get("triggers") or []):
        cron = trigger.get("cron") if isinstance(trigger, dict) else None
        if cron is None:
            continue
        if not isinstance(cron, str):
            raise fail(f"triggers[{i}].cron", "must be a string")
        try:
            parse_cron(cron)
        except CronError as err:
            raise fail(f"triggers[{i}].cron", str(err)) from None
        if cron in seen:
            raise fail(f"triggers[{i}].cron", f"duplicate cron expression {cron!r}")
        seen.add(cron)
        jitter = trigger.get("jitter")
        if jitter not in (None, ""):
            bounds = (MIN_JITTER_MS, MAX_JITTER_MS)
            _check_duration(jitter, f"triggers[{i}].jitter", fail, bounds)
