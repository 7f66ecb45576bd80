"""The option table of `headrace dev` and the service commands: every flag once, with its
`HEADRACE_*` variable, type, help and default. runtime/settings_commands.py reads their values
into Settings.

- The engine's flags go on both commands, by the same names and variables. Their defaults are
  the mode's settings (runtime/settings.py `DEV_SETTINGS`, `SERVICE_SETTINGS`), the one place
  the modes differ (`--rate-limit`, `--log-format`); `--port` is each command's own.
- The embedded storage's flags go on `headrace dev` only; the cluster's (Kafka, Cassandra, their
  credentials, TLS and consistency, and `--partitions`) on the service commands and `migrate`,
  from runtime/cluster_options.py.

Event keys are taken in two shapes on both commands, together: `--event-key KEY[=ACCOUNT]`,
repeatable, as Inngest's `inngest start --event-key`; and `--event-keys KEY[=ACCOUNT],...` from
`HEADRACE_EVENT_KEYS` (what the Helm chart sets: a list fits one variable, a repeated flag does
not). A key without an account is the default account's.

The signing key is read from `HEADRACE_SIGNING_KEY`, else `INNGEST_SIGNING_KEY`: the variable the
SDKs read, so an app and `headrace dev` started from one shell share the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from headrace.core.retention import MAX_RETENTION_S
from headrace.engine.step_limit import MAX_STEPS_CEILING
from headrace.protocol.accounts import DEFAULT_ACCOUNT
from headrace.runtime.settings import DEV_SETTINGS, Settings

F = TypeVar("F", bound=Callable[..., Any])
Option = Callable[[F], F]


def _items(value: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def _event_key(item: str) -> tuple[str, str]:
    key, sep, account = item.partition("=")
    if not key or (sep and not account):
        raise click.BadParameter(f"expected KEY or KEY=ACCOUNT, got {item!r}")
    return key, account or DEFAULT_ACCOUNT


def _event_key_flags(_ctx: Any, _param: Any, value: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(_event_key(item) for item in value)


def _event_key_list(_ctx: Any, _param: Any, value: str) -> tuple[tuple[str, str], ...]:
    return tuple(_event_key(item) for item in _items(value))


def _signing_key_list(_ctx: Any, _param: Any, value: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in _items(value):
        account, sep, key = item.partition("=")
        if not sep or not account or not key:
            raise click.BadParameter(f"expected ACCOUNT=SIGNING_KEY, got {item!r}")
        pairs.append((account, key))
    return tuple(pairs)


def comma_list(_ctx: Any, _param: Any, value: str) -> tuple[str, ...]:
    return tuple(_items(value))


def _finite_seconds(_ctx: Any, _param: Any, value: float | None) -> float | None:
    """Refuses inf and nan too, which the range check lets through."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number of seconds")
    return value


def flag(*names: str, envvar: str | list[str] | None, **kwargs: Any) -> Option[Any]:
    """An option whose help shows its variable and, unless told otherwise, its default."""
    kwargs.setdefault("show_default", True)
    return click.option(*names, envvar=envvar, show_envvar=True, **kwargs)


def engine_options(defaults: Settings, port: int) -> list[Option[Any]]:
    """The flags of both commands, with the defaults of the command's mode."""
    return [
        flag("--host", envvar="HEADRACE_HOST", default=defaults.host, help="Address to listen on."),
        flag(
            "-p",
            "--port",
            envvar="HEADRACE_PORT",
            type=int,
            default=port,
            help="HTTP port: the APIs (dev, ingest), /health, /ready and /metrics.",
        ),
        flag(
            "--event-key",
            "event_key_flags",
            envvar=None,
            multiple=True,
            show_default=False,
            metavar="KEY[=ACCOUNT]",
            callback=_event_key_flags,
            help="An event key the Event API takes (repeatable). Without any event key, "
            "`headrace dev` takes any key; a service refuses every event.",
        ),
        flag(
            "--event-keys",
            "event_key_list",
            envvar="HEADRACE_EVENT_KEYS",
            default="",
            show_default=False,
            metavar="KEY[=ACCOUNT],...",
            callback=_event_key_list,
            help="Event keys the Event API takes, as --event-key's, comma-separated.",
        ),
        flag(
            "--signing-key",
            envvar=["HEADRACE_SIGNING_KEY", "INNGEST_SIGNING_KEY"],
            default=None,
            help="The default account's signing key: calls to apps are signed with it, and "
            "/fn/register and the APIs require it (apps then run as in production).",
        ),
        flag(
            "--signing-keys",
            envvar="HEADRACE_SIGNING_KEYS",
            default="",
            show_default=False,
            metavar="ACCOUNT=SIGNING_KEY,...",
            callback=_signing_key_list,
            help="The signing keys of the accounts other than the default one.",
        ),
        flag(
            "--require-signed-answers",
            envvar="HEADRACE_REQUIRE_SIGNED_ANSWERS",
            is_flag=True,
            default=defaults.require_signed_answers,
            show_default=False,
            help="Refuse an app's answer without a valid X-Inngest-Signature (the SDKs sign in "
            "production mode); without it, only an answer that carries one has it checked. "
            "Needs a signing key.",
        ),
        flag(
            "--dashboard-token",
            envvar="HEADRACE_DASHBOARD_TOKEN",
            default=defaults.dashboard_token,
            help="The token the dashboard and /metrics ask for. `headrace dev` asks only when "
            "keys are required, and without it writes a random one to "
            "<state-dir>/dashboard-token; without it the ingest serves no dashboard.",
        ),
        flag(
            "--call-timeout",
            envvar="HEADRACE_CALL_TIMEOUT",
            type=float,
            default=defaults.call_timeout_s,
            help="Seconds per call to an app.",
        ),
        flag(
            "--endpoint-timeout",
            envvar="HEADRACE_ENDPOINT_TIMEOUT",
            type=float,
            default=defaults.endpoint_timeout_s,
            help="Seconds a Durable Endpoint's request may hold its run before the run fails.",
        ),
        # Inngest's `inngest dev` / `inngest start` flag, by the same name.
        flag(
            "--retry-interval",
            envvar="HEADRACE_RETRY_INTERVAL",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            default=defaults.retry_interval_s,
            callback=_finite_seconds,
            help="Seconds every retry of a failed call, step or request waits, instead of "
            "Inngest's exponential backoff (15 s, 30 s, 1 m, ... plus up to 30 s of jitter). An "
            "app's Retry-After (RetryAfterError) still wins. As Inngest's --retry-interval, "
            "which takes whole seconds of 1 or more; here any number above 0 (0.1: quick "
            "retries in tests). Unset: Inngest's backoff.",
        ),
        flag(
            "--max-steps",
            envvar="HEADRACE_MAX_STEPS",
            type=click.IntRange(1, MAX_STEPS_CEILING),
            default=defaults.max_steps,
            help="Steps a run may settle; at this many it fails (InngestErrFunctionOverflowed) "
            "instead of calling its app again, as in Inngest.",
        ),
        flag(
            "--executor-concurrency",
            envvar="HEADRACE_EXECUTOR_CONCURRENCY",
            type=click.IntRange(min=1),
            default=defaults.executor_concurrency,
            help="Records of the work topic an executor handles at once (each mostly a run's "
            "call to its app); more wait in the log.",
        ),
        flag(
            "--app-concurrency",
            envvar="HEADRACE_APP_CONCURRENCY",
            type=click.IntRange(min=1),
            default=defaults.app_concurrency,
            help="Calls each app is sent at once, at most. Unset: learnt per app from how its "
            "calls are answered (fewer when it queues them, up to --executor-concurrency when "
            "it does not).",
        ),
        flag(
            "--intake-topics",
            envvar="HEADRACE_INTAKE_TOPICS",
            default=",".join(defaults.intake_topics),
            callback=comma_list,
            help="Comma-separated topics (under the prefix) producers publish events to; the "
            "ingest reads them. Empty: none.",
        ),
        flag(
            "--retention",
            envvar="HEADRACE_RETENTION",
            type=click.IntRange(1, MAX_RETENTION_S),
            default=defaults.retention_s,
            help="Seconds ended runs (with their memos and history) and events are kept.",
        ),
        flag(
            "--dead-letter-retention",
            envvar="HEADRACE_DEAD_LETTER_RETENTION",
            type=click.IntRange(1, MAX_RETENTION_S),
            default=defaults.dead_letter_retention_s,
            help="Seconds records of the dead-letter topic are kept.",
        ),
        flag(
            "--rate-limit",
            envvar="HEADRACE_RATE_LIMIT",
            type=click.FloatRange(min=0),
            default=defaults.rate_limit.per_second,
            help="Writing requests (POST, PUT, DELETE) per second per account or, for a key no "
            "account has, per address; over it: 429 with Retry-After. 0: no limit.",
        ),
        flag(
            "--rate-burst",
            envvar="HEADRACE_RATE_BURST",
            type=click.IntRange(min=1),
            default=defaults.rate_limit.burst,
            help="How many writing requests per client may come at once.",
        ),
        flag(
            "--log-format",
            envvar="HEADRACE_LOG_FORMAT",
            type=click.Choice(["console", "json"]),
            default=defaults.log_format,
            help="Log lines readable (console) or one JSON object each (json).",
        ),
        flag(
            "--log-level",
            envvar="HEADRACE_LOG_LEVEL",
            default=defaults.log_level,
            help="debug, info, warning or error.",
        ),
    ]


_EMBEDDED = DEV_SETTINGS.embedded

embedded_options: list[Option[Any]] = [
    flag(
        "-u",
        "--sdk-url",
        "sdk_urls",
        envvar="HEADRACE_SDK_URLS",
        multiple=True,
        show_default=False,
        help="An app's serve URL to sync at start and every poll interval (repeatable; the "
        "variable takes them space-separated).",
    ),
    flag(
        "--state-dir",
        envvar="HEADRACE_STATE_DIR",
        type=click.Path(path_type=Path),
        default=_EMBEDDED.state_dir,
        help="Where the SQLite state lives; runs resume from it after a restart.",
    ),
    flag(
        "--in-memory",
        envvar="HEADRACE_IN_MEMORY",
        is_flag=True,
        show_default=False,
        help="Keep nothing: state lives in memory.",
    ),
    flag(
        "--poll-interval",
        envvar="HEADRACE_POLL_INTERVAL",
        type=float,
        default=_EMBEDDED.poll_interval_s,
        help="Seconds between re-syncs of the apps.",
    ),
]
