"""Starting a distributed-mode service from its command."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from headrace.obs.logging import configure_logging
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.runtime.connect import connect_cluster
from headrace.runtime.process import ServiceProcess
from headrace.runtime.settings import settings_from

Wire = Callable[[ServiceProcess, Log, Stores], Awaitable[None]]


def run_service(name: str, options: dict[str, Any], wire: Wire) -> None:
    configure_logging(
        os.environ.get("HEADRACE_LOG_FORMAT", "json"), os.environ.get("HEADRACE_LOG_LEVEL", "info")
    )
    process = ServiceProcess(name, settings_from(options))
    asyncio.run(process.run(connect_cluster, wire))
