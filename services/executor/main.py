"""`headrace executor`: consumes `work`; calls apps and moves runs along."""

from __future__ import annotations

import click
from headrace.services.executor.app_gate import AppGate
from headrace.services.executor.service import Executor

from headrace.core.backoff import interval_ms
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.protocol.driver import AppDriver
from headrace.runtime.host import Host
from headrace.runtime.main import run_service
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command


async def wire(host: Host, log_port: Log, stores: Stores) -> None:
    settings = host.settings
    accounts = settings.accounts()
    driver = AppDriver(
        host.clock,
        keys=accounts,
        timeout_s=settings.call_timeout_s,
        require_signed_answers=settings.require_signed_answers,
    )
    executor = Executor(
        log_port,
        host.topics,
        stores,
        driver,
        host.clock,
        server_kind=accounts.server_kind,
        retry_interval_ms=interval_ms(settings.retry_interval_s),
        max_steps=settings.max_steps,
        app_gate=AppGate(
            host.clock,
            maximum=settings.executor_concurrency,
            fixed=settings.app_concurrency,
            max_wait_ms=round(settings.call_timeout_s * 1000),
        ),
    )
    host.loops(log_port).add(
        host.topics.work,
        "executor",
        executor.handle,
        concurrency=settings.executor_concurrency,
        on_assigned=executor.on_assigned,
        on_revoked=executor.on_revoked,
    )
    host.on_stop(driver.close)


@click.command()
@service_command(default_port=8292)
def executor(settings: Settings) -> None:
    """Run an executor: the SDK protocol, calls to apps, run state."""
    run_service("executor", settings, wire)
