"""`headrace dev`."""

from __future__ import annotations

import asyncio
import signal

import click

from headrace.dev.server import DevServer
from headrace.obs.setup import setup_observability
from headrace.runtime.heap import freeze_startup_heap, time_collections
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import dev_command


@click.command()
@dev_command
def dev(settings: Settings) -> None:
    """Run ingest, runner, scheduler and executor in one process, on embedded storage."""
    # The server registers its secrets for masking (dev/ingest.py).
    setup_observability("dev", log_format=settings.log_format, log_level=settings.log_level)
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    time_collections()
    server = DevServer(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await server.start()
    freeze_startup_heap()
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
