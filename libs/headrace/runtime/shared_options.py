"""The flags both `headrace dev` and the service commands take, each with its `HEADRACE_*`
variable, and how their values are read."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

from headrace.core.retention import (
    DEFAULT_DEAD_LETTER_RETENTION_S,
    DEFAULT_RETENTION_S,
    MAX_RETENTION_S,
)
from headrace.engine.step_limit import DEFAULT_MAX_STEPS, MAX_STEPS_CEILING

F = TypeVar("F", bound=Callable[..., Any])


# In `headrace dev` the same intake reads the same topics, on the embedded log.
intake_topics_option = click.option(
    "--intake-topics",
    envvar="HEADRACE_INTAKE_TOPICS",
    default="intake",
    show_default=True,
    help="Comma-separated topics (under the prefix) producers publish events to; the ingest "
    "reads them. Empty: none.",
)


# `headrace dev` sweeps its SQLite state and dead letters by the same settings.
retention_option = click.option(
    "--retention",
    envvar="HEADRACE_RETENTION",
    type=click.IntRange(1, MAX_RETENTION_S),
    default=DEFAULT_RETENTION_S,
    show_default=True,
    help="Seconds ended runs (with their memos and history) and events are kept.",
)
dead_letter_retention_option = click.option(
    "--dead-letter-retention",
    envvar="HEADRACE_DEAD_LETTER_RETENTION",
    type=click.IntRange(1, MAX_RETENTION_S),
    default=DEFAULT_DEAD_LETTER_RETENTION_S,
    show_default=True,
    help="Seconds records of the dead-letter topic are kept.",
)


max_steps_option = click.option(
    "--max-steps",
    envvar="HEADRACE_MAX_STEPS",
    type=click.IntRange(1, MAX_STEPS_CEILING),
    default=DEFAULT_MAX_STEPS,
    show_default=True,
    help="Steps a run may settle; at this many it fails (InngestErrFunctionOverflowed) instead "
    "of calling its app again, as in Inngest.",
)


# The executor's bound on records of `work` handled at once (runtime/consume.py): each is a run's
# call to its app, or a timer's effect; more wait in the log.
DEFAULT_EXECUTOR_CONCURRENCY = 200
executor_concurrency_option = click.option(
    "--executor-concurrency",
    envvar="HEADRACE_EXECUTOR_CONCURRENCY",
    type=click.IntRange(min=1),
    default=DEFAULT_EXECUTOR_CONCURRENCY,
    show_default=True,
    help="Records of the work topic an executor handles at once (each mostly a run's call to "
    "its app); more wait in the log.",
)


def _finite_seconds(
    _ctx: click.Context, _param: click.Parameter, value: float | None
) -> float | None:
    """Refuses inf and nan too, which the range check lets through."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number of seconds")
    return value


# Inngest's `inngest dev` / `inngest start` flag, by the same name.
retry_interval_option = click.option(
    "--retry-interval",
    envvar="HEADRACE_RETRY_INTERVAL",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    default=None,
    callback=_finite_seconds,
    help="Seconds every retry of a failed call, step or request waits, instead of Inngest's "
    "exponential backoff (15 s, 30 s, 1 m, ... plus up to 30 s of jitter). An app's "
    "Retry-After (RetryAfterError) still wins. As Inngest's --retry-interval, which takes "
    "whole seconds of 1 or more; here any number above 0 (0.1: quick retries in tests). "
    "Unset: Inngest's backoff.",
)


require_signed_answers_option = click.option(
    "--require-signed-answers",
    envvar="HEADRACE_REQUIRE_SIGNED_ANSWERS",
    is_flag=True,
    default=False,
    help="Refuse an app's answer without a valid X-Inngest-Signature (the SDKs sign in "
    "production mode); without it, only an answer that carries one has it checked. Needs a "
    "signing key.",
)


def require_signing_key(required: bool, has_key: bool) -> None:
    """`--require-signed-answers` without a key: no call is signed, so no answer would be."""
    if required and not has_key:
        raise click.UsageError("--require-signed-answers needs a signing key")


def parse_topics(value: str) -> tuple[str, ...]:
    """`--intake-topics`: comma-separated names, blanks dropped."""
    return tuple(t.strip() for t in value.split(",") if t.strip())


def rate_limit_options(per_second: float, burst: int) -> list[Callable[[F], F]]:
    """`--rate-limit` and `--rate-burst`: writing requests per client (api/rate_limit.py)."""
    return [
        click.option(
            "--rate-limit",
            envvar="HEADRACE_RATE_LIMIT",
            type=click.FloatRange(min=0),
            default=per_second,
            show_default=True,
            help="Writing requests (POST, PUT, DELETE) per second per account or, for a key "
            "no account has, per address; over it: 429 with Retry-After. 0: no limit.",
        ),
        click.option(
            "--rate-burst",
            envvar="HEADRACE_RATE_BURST",
            type=click.IntRange(min=1),
            default=burst,
            show_default=True,
            help="How many writing requests per client may come at once.",
        ),
    ]
