"""`headrace scheduler`: consumes `schedule`; owns the timer wheel of its partitions."""

from __future__ import annotations

import click
from headrace.services.scheduler.service import Scheduler, lease_ms

from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.host import Host
from headrace.runtime.main import run_service
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command


async def wire(host: Host, log_port: Log, stores: Stores) -> None:
    scheduler = Scheduler(
        log_port, host.topics, stores, host.clock, lease_ms=lease_ms(host.settings.call_timeout_s)
    )
    host.loops(log_port).add_in_partition_order(
        host.topics.schedule,
        "scheduler",
        scheduler.handle,
        on_assigned=scheduler.on_assigned,
        on_revoked=scheduler.on_revoked,
    )
    host.spawn("timer-wheel", scheduler.wheel.run)
    host.spawn("flow-control", scheduler.flow.run)


@click.command()
@service_command(default_port=8291)
def scheduler(settings: Settings) -> None:
    """Run a scheduler: timers (sleeps, timeouts, retries, batches) and delivery of work."""
    run_service("scheduler", settings, wire)
