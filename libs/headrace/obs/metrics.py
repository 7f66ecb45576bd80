"""Every Prometheus metric headrace exports, and the functions the code records them with.

They live in the process's default registry and are served at `/metrics` on each service's
HTTP port (and on the dev server's). Labels stay bounded: topics, partitions, consumer groups,
function ids, app ids, statuses and outcomes; never run ids or event ids.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

RECORDS_CONSUMED = Counter(
    "headrace_records_consumed_total",
    "Log records handled to the end by a consume loop.",
    ["topic", "group"],
)
RECORDS_PRODUCED = Counter(
    "headrace_records_produced_total", "Log records published (acknowledged).", ["topic"]
)
CONSUMER_LAG = Gauge(
    "headrace_consumer_lag",
    "Records of a partition after the group's committed offset (end offset minus committed).",
    ["topic", "group", "partition"],
)
STEP_DURATION = Histogram(
    "headrace_step_duration_seconds",
    "Duration of one call to an app for a run (a step attempt or a discovery call), by outcome.",
    ["function", "kind", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
TIMER_LATENESS = Histogram(
    "headrace_timer_lateness_seconds",
    "How long after its due time a timer fired (sleeps, timeouts, retries, batches).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300),
)
GC_PAUSE = Histogram(
    "headrace_gc_pause_seconds",
    "How long each pass of Python's cycle collector stopped the process, by generation.",
    ["generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
RUNS_STARTED = Counter("headrace_runs_started_total", "Runs created.", ["function"])
RUNS_ENDED = Counter(
    "headrace_runs_ended_total",
    "Runs that ended, by status (completed, failed, cancelled).",
    ["function", "status"],
)
FLOW_CONTROL_WAITS = Counter(
    "headrace_flow_control_waits_total",
    "Times a run or step was held back by flow control (concurrency, throttle, ...).",
    ["function", "kind"],
)
APP_HTTP_ERRORS = Counter(
    "headrace_app_http_errors_total",
    "Calls to an app that got no usable answer: an HTTP error status, or none (transport).",
    ["app", "reason"],
)
INTAKE_EVENTS = Counter(
    "headrace_intake_events_total",
    "Events accepted from the intake topics (Kafka's, or dev's embedded log).",
    ["topic"],
)
INTAKE_REJECTED = Counter(
    "headrace_intake_rejected_total",
    "Intake records set aside in the dead-letter topic, by reason.",
    ["topic", "reason"],
)


def record_consumed(topic: str, group: str, count: int = 1) -> None:
    RECORDS_CONSUMED.labels(topic, group).inc(count)


def record_produced(topic: str, count: int = 1) -> None:
    RECORDS_PRODUCED.labels(topic).inc(count)


def set_consumer_lag(topic: str, group: str, lag: dict[int, int], previous: set[int]) -> set[int]:
    """Set the lag of the partitions a member owns; drop those it no longer owns (another
    process reports them now). Returns the partitions reported, to pass back next time."""
    for partition in previous - set(lag):
        try:
            CONSUMER_LAG.remove(topic, group, str(partition))
        except KeyError:
            pass
    for partition, value in lag.items():
        CONSUMER_LAG.labels(topic, group, str(partition)).set(value)
    return set(lag)


def observe_step(function: str, kind: str, outcome: str, seconds: float) -> None:
    STEP_DURATION.labels(function, kind, outcome).observe(seconds)


def observe_timer_lateness(seconds: float) -> None:
    TIMER_LATENESS.observe(max(seconds, 0.0))


def observe_gc_pause(generation: int, seconds: float) -> None:
    GC_PAUSE.labels(str(generation)).observe(seconds)


def run_started(function: str) -> None:
    RUNS_STARTED.labels(function).inc()


def run_ended(function: str, status: str) -> None:
    RUNS_ENDED.labels(function, status).inc()


def count_flow_control_wait(kind: str, function: str) -> None:
    """Count one wait imposed by flow control: `kind` is the rule (concurrency, throttle,
    rate_limit, debounce, priority, singleton, ...), `function` the function id."""
    FLOW_CONTROL_WAITS.labels(function, kind).inc()


def app_http_error(app: str, reason: str) -> None:
    APP_HTTP_ERRORS.labels(app, reason).inc()


def intake_accepted(topic: str, events: int) -> None:
    INTAKE_EVENTS.labels(topic).inc(events)


def intake_rejected(topic: str, reason: str) -> None:
    INTAKE_REJECTED.labels(topic, reason).inc()


def metrics_route(allows: Callable[[Request], bool] | None = None) -> Route:
    """`/metrics`; with `allows`, only for the requests it allows (its labels name functions
    and apps, which a server that requires keys shows no stranger)."""

    async def metrics(request: Request) -> Response:
        if allows is not None and not allows(request):
            return PlainTextResponse("the dashboard token is required", status_code=401)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics)
