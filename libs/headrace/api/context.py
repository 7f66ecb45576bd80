"""What the HTTP handlers need, handed to them by whoever wires the process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from headrace.core.clock import Clock
from headrace.ports.stores import Stores

# Accepts events for an account as the Event API does; returns their internal ids.
SendEvents = Callable[[str, list[dict[str, Any]]], Awaitable[list[str]]]


@dataclass(frozen=True)
class ApiContext:
    stores: Stores
    clock: Clock
    send_events: SendEvents
    # `headrace dev` has one account; distributed mode maps event and signing keys to accounts.
    default_account: str = "default"
    signing_key: str | None = None
