"""Starting a distributed-mode service from its command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from headrace.core.errors import AuthenticationFailed
from headrace.obs.setup import setup_observability
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.connect import connect_cluster
from headrace.runtime.process import ServiceProcess
from headrace.runtime.settings import Settings

Wire = Callable[[ServiceProcess, Log, Stores], Awaitable[None]]


def run_service(name: str, settings: Settings, wire: Wire) -> None:
    setup_observability(
        name,
        log_format=settings.log_format,
        log_level=settings.log_level,
        secrets=[
            *settings.accounts().secret_values(),
            settings.dashboard_token,
            settings.cluster.kafka_security.sasl_password,
            settings.cluster.cassandra_security.password,
        ],
    )
    process = ServiceProcess(name, settings)
    try:
        asyncio.run(process.run(connect_cluster, wire))
    except AuthenticationFailed:
        raise SystemExit(1) from None  # the process logged why
