"""A function's flow-control configuration: its bounds, and what it means for one run.

Read from the synced configuration (`concurrency`, `throttle`, `rateLimit`, `priority`,
`timeouts`), which `protocol.registration` has already checked against the bounds here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from headrace.core.durations import DurationError, parse_duration_ms
from headrace.core.jsonutil import dumps_text
from headrace.expressions import EvaluationError, ExpressionError, compile_expression
from headrace.flow.gcra import Gcra
from headrace.messages.flow import RunFlow, Slot

log = structlog.get_logger(__name__)

MAX_CONCURRENCY_LIMITS = 2  # [GO] consts.MaxConcurrencyLimits
# [GO] consts.DefaultConcurrencyLimit: applied to a function that sets no concurrency at all.
DEFAULT_CONCURRENCY_LIMIT = 1_000
CONCURRENCY_LIMIT_RANGE = (1, 100_000)  # [GO] consts.DefaultSystemConcurrencyLimit
SCOPES = ("fn", "env", "account")
PRIORITY_RANGE_S = 600
RATE_LIMIT_PERIOD_MS = (1_000, 86_400_000)
THROTTLE_PERIOD_MS = (1_000, 7 * 86_400_000)
# How long a function's run is deduplicated by its triggering event's id (a repeated event
# starts no second run), and how long decisions made for that event are kept with it.
EVENT_DEDUPE_TTL_MS = 86_400_000


def concurrency_entries(config: dict[str, Any]) -> list[Any]:
    """The `concurrency` entries as a list (the SDKs also send one object, or a bare limit)."""
    value = config.get("concurrency")
    if value is None:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return [{"limit": value}]
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class RunPlan:
    """Flow control of one run, decided when its StartRun reaches the scheduler."""

    flow: RunFlow
    # (throttle key, limiter) when the function is throttled.
    throttle: tuple[str, Gcra] | None
    start_timeout_ms: int


def flow_key(account_id: str, fn_id: str, config: dict[str, Any]) -> str:
    """The key of a run's records on `schedule`, so the scheduler owning its partition decides
    everything the run's flow control shares with other runs: the function's, when its slots
    and throttle are all the function's own; the account's, when a concurrency limit is shared
    across functions (scope `env` or `account`)."""
    shared = any(entry.get("scope") in ("env", "account") for entry in concurrency_entries(config))
    return account_id if shared else f"{account_id}:{fn_id}"


def plan_run(account_id: str, fn_id: str, config: dict[str, Any], event: dict[str, Any]) -> RunPlan:
    slots = []
    for entry in concurrency_entries(config):
        scope = entry.get("scope") or "fn"
        key = entry.get("key")
        value = key_value(key, event, fn_id, "concurrency.key") if key else None
        base = f"fn:{account_id}:{fn_id}" if scope == "fn" else f"{scope}:{account_id}"
        slots.append(Slot(base if value is None else f"{base}:{value}", int(entry["limit"])))
    if not slots:
        slots.append(Slot(f"fn:{account_id}:{fn_id}", DEFAULT_CONCURRENCY_LIMIT))
    timeouts = config.get("timeouts") or {}
    start_ms = _duration(timeouts.get("start"))
    finish_ms = _duration(timeouts.get("finish"))
    flow = RunFlow(
        fn_id=fn_id,
        key=flow_key(account_id, fn_id, config),
        slots=slots,
        priority_ms=priority_s(config, event, fn_id) * 1000,
        start_timeout=start_ms > 0,
        finish_timeout_ms=finish_ms,
    )
    throttle = None
    spec = config.get("throttle")
    if spec:
        gcra = Gcra.throttle(
            int(spec.get("limit") or 1),
            _duration(spec.get("period")),
            int(spec.get("burst") or 0),
        )
        value = key_value(spec.get("key"), event, fn_id, "throttle.key") if spec.get("key") else ""
        throttle = (f"{account_id}:{fn_id}:{value}", gcra)
    return RunPlan(flow, throttle, start_ms)


def rate_limit(
    account_id: str, fn_id: str, config: dict[str, Any], event: dict[str, Any]
) -> tuple[str, Gcra] | None:
    """(rate-limit key, limiter) for this event, or None when the function has no rate limit."""
    spec = config.get("rateLimit")
    if not spec:
        return None
    gcra = Gcra.rate_limit(int(spec.get("limit") or 1), _duration(spec.get("period")))
    value = key_value(spec.get("key"), event, fn_id, "rateLimit.key") if spec.get("key") else ""
    return f"{account_id}:{fn_id}:{value}", gcra


def priority_s(config: dict[str, Any], event: dict[str, Any], fn_id: str) -> int:
    """`priority.run` for this event, in seconds within +-600; 0 when it does not evaluate to a
    number (as in Inngest, a failing expression does not stop the run)."""
    expr = priority_expression(config)
    if not expr:
        return 0
    try:
        value = compile_expression(expr).evaluate({"event": event})
    except (ExpressionError, EvaluationError) as err:
        log.warning("priority.run failed; using 0", fn_id=fn_id, error=str(err))
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        log.warning("priority.run is not a number; using 0", fn_id=fn_id)
        return 0
    return max(-PRIORITY_RANGE_S, min(PRIORITY_RANGE_S, int(value)))


def priority_expression(config: dict[str, Any]) -> str | None:
    """The function's `priority.run` expression, or None when it sets no priority."""
    expr = (config.get("priority") or {}).get("run")
    return str(expr) if expr else None


def key_value(expr: str, event: dict[str, Any], fn_id: str, field: str) -> str:
    """The value of a key expression for this event. A key that fails to evaluate puts the run
    in the queue of the failing keys (""), so a bad event cannot break the others' queues."""
    try:
        value = compile_expression(str(expr)).evaluate({"event": event})
    except (ExpressionError, EvaluationError) as err:
        log.warning("key expression failed", fn_id=fn_id, field=field, error=str(err))
        return ""
    return value if isinstance(value, str) else dumps_text(value)


def _duration(value: object) -> int:
    if value in (None, ""):
        return 0
    try:
        return parse_duration_ms(str(value))
    except DurationError:
        return 0
