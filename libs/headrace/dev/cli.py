"""`headrace dev`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from headrace.dev.server import DevServer
from headrace.dev.settings import DevSettings
from headrace.flow.client_rate import ClientRate
from headrace.obs.setup import setup_observability
from headrace.runtime.shared_options import (
    dead_letter_retention_option,
    executor_concurrency_option,
    intake_topics_option,
    max_steps_option,
    parse_topics,
    rate_limit_options,
    require_signed_answers_option,
    require_signing_key,
    retention_option,
    retry_interval_option,
)

# Off by default: on one's own machine the only client is oneself.
_RATE_LIMIT = rate_limit_options(0.0, 100)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("-p", "--port", default=8288, show_default=True, help="Port of the APIs.")
@click.option(
    "-u",
    "--sdk-url",
    "sdk_urls",
    multiple=True,
    help="An app's serve URL to sync at start and every poll interval (repeatable).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path(".headrace"),
    show_default=True,
    help="Where the SQLite state lives; runs resume from it after a restart.",
)
@click.option("--in-memory", is_flag=True, help="Keep nothing: state lives in memory.")
@click.option("--poll-interval", default=5.0, show_default=True, help="Seconds between re-syncs.")
@click.option(
    "--event-key",
    "event_keys",
    multiple=True,
    help="Require this event key on the Event API (repeatable); without, any key is accepted.",
)
@click.option(
    "--signing-key",
    envvar="INNGEST_SIGNING_KEY",
    help="Sign requests to apps and require it on /fn/register and /v0.",
)
@click.option(
    "--dashboard-token",
    envvar="HEADRACE_DASHBOARD_TOKEN",
    default=None,
    help="The token the dashboard and /metrics ask for when keys are required; without it, "
    "a random one is written to <state-dir>/dashboard-token.",
)
@click.option("--call-timeout", default=300.0, show_default=True, help="Seconds per app call.")
@click.option(
    "--endpoint-timeout",
    default=3600.0,
    show_default=True,
    help="Seconds a Durable Endpoint's request may hold its run before the run fails.",
)
@intake_topics_option
@max_steps_option
@executor_concurrency_option
@retry_interval_option
@require_signed_answers_option
@retention_option
@dead_letter_retention_option
@_RATE_LIMIT[0]
@_RATE_LIMIT[1]
@click.option(
    "--log-format",
    envvar="HEADRACE_LOG_FORMAT",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
)
@click.option("--log-level", envvar="HEADRACE_LOG_LEVEL", default="info", show_default=True)
def dev(
    host: str,
    port: int,
    sdk_urls: tuple[str, ...],
    state_dir: Path,
    in_memory: bool,
    poll_interval: float,
    event_keys: tuple[str, ...],
    signing_key: str | None,
    dashboard_token: str | None,
    call_timeout: float,
    endpoint_timeout: float,
    intake_topics: str,
    max_steps: int,
    executor_concurrency: int,
    retry_interval: float | None,
    require_signed_answers: bool,
    retention: int,
    dead_letter_retention: int,
    rate_limit: float,
    rate_burst: int,
    log_format: str,
    log_level: str,
) -> None:
    """Run ingest, runner, scheduler and executor in one process, on embedded storage."""
    require_signing_key(require_signed_answers, bool(signing_key))
    # The server registers its secrets for masking (dev/ingest.py).
    setup_observability("dev", log_format=log_format, log_level=log_level)
    settings = DevSettings(
        host=host,
        port=port,
        state_dir=None if in_memory else state_dir,
        sdk_urls=list(sdk_urls),
        poll_interval_s=poll_interval,
        event_keys={key: "default" for key in event_keys} if event_keys else None,
        signing_key=signing_key,
        require_signed_answers=require_signed_answers,
        retry_interval_s=retry_interval,
        call_timeout_s=call_timeout,
        endpoint_timeout_s=endpoint_timeout,
        dashboard_token=dashboard_token,
        intake_topics=parse_topics(intake_topics),
        max_steps=max_steps,
        executor_concurrency=executor_concurrency,
        retention_s=retention,
        dead_letter_retention_s=dead_letter_retention,
        rate_limit=ClientRate(rate_limit, rate_burst),
    )
    asyncio.run(_serve(settings))


async def _serve(settings: DevSettings) -> None:
    server = DevServer(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await server.start()
    click.echo(
        f"headrace dev: http://{settings.host}:{settings.port} "
        f"(Event API POST /e/<key>, intake POST /dev/intake/<topic>, GraphQL /v0/gql)",
        err=True,
    )
    dashboard = f"http://{settings.host}:{settings.port}/dashboard"
    ingest = server.ingest
    if ingest.dashboard_auth.required:
        dashboard += (
            f" (keys are required: log in with the dashboard token, {ingest.dashboard_login})"
        )
    click.echo(f"dashboard: {dashboard}", err=True)
    await stopping.wait()
    await server.stop()
