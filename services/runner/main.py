"""`headrace runner`: consumes `events`; triggers runs, resolves waits, invokes and cancels."""

from __future__ import annotations

import click
from headrace.services.runner.service import Runner

from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.host import Host
from headrace.runtime.main import run_service
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command


async def wire(host: Host, log_port: Log, stores: Stores) -> None:
    runner = Runner(log_port, host.topics, stores, host.clock)
    host.loops(log_port).add_in_partition_order(
        host.topics.events,
        "runner",
        runner.handle,
        on_assigned=runner.on_assigned,
        on_revoked=runner.on_revoked,
    )


@click.command()
@service_command(default_port=8290)
def runner(settings: Settings) -> None:
    """Run a runner: triggers, waits, cancels, invokes, batches."""
    run_service("runner", settings, wire)
