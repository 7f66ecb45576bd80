"""Starting a distributed-mode service from its command."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from headrace.core.errors import AuthenticationFailed
from headrace.obs.setup import setup_observability
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.cluster_options import settings_from
from headrace.runtime.connect import connect_cluster
from headrace.runtime.process import ServiceProcess

Wire = Callable[[ServiceProcess, Log, Stores], Awaitable[None]]


def run_service(name: str, options: dict[str, Any], wire: Wire) -> None:
    settings = settings_from(options)
    setup_observability(
        name,
        log_format=os.environ.get("HEADRACE_LOG_FORMAT", "json"),
        secrets=[
            *settings.accounts().secret_values(),
            settings.dashboard_token,
            settings.kafka_security.sasl_password,
            settings.cassandra_security.password,
        ],
    )
    process = ServiceProcess(name, settings)
    try:
        asyncio.run(process.run(connect_cluster, wire))
    except AuthenticationFailed:
        raise SystemExit(1) from None  # the process logged why
