"""`headrace scheduler`: consumes `schedule`; owns the timer wheel of its partitions."""

from __future__ import annotations

from typing import Any

import click
from headrace.services.scheduler.service import Scheduler, lease_ms

from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.main import run_service
from headrace.runtime.process import ServiceProcess
from headrace.runtime.settings import cluster_options
from headrace.runtime.supervise import spawn


async def wire(proc: ServiceProcess, log_port: Log, stores: Stores) -> None:
    scheduler = Scheduler(
        log_port, proc.topics, stores, proc.clock, lease_ms=lease_ms(proc.settings.call_timeout_s)
    )
    proc.loops(log_port).add(
        proc.topics.schedule,
        "scheduler",
        scheduler.handle,
        concurrency=1,
        on_assigned=scheduler.on_assigned,
        on_revoked=scheduler.on_revoked,
    )
    proc.tasks.append(spawn("timer-wheel", scheduler.wheel.run))
    proc.tasks.append(spawn("flow-control", scheduler.flow.run))


@click.command()
@cluster_options(default_port=8291)
def scheduler(**options: Any) -> None:
    """Run a scheduler: timers (sleeps, timeouts, retries, batches) and delivery of work."""
    run_service("scheduler", options, wire)
