"""What the HTTP handlers need, handed to them by whoever wires the process."""

from __future__ import annotations

from dataclasses import dataclass

from headrace.api.controls import RunControls
from headrace.core.clock import Clock
from headrace.ports.stores import Stores


@dataclass(frozen=True)
class ApiContext:
    stores: Stores
    clock: Clock
    # `headrace dev` has one account; distributed mode maps event and signing keys to accounts.
    default_account: str = "default"
    signing_key: str | None = None
    # Cancel, rerun, replay, invoke: absent where a process serves reads only.
    controls: RunControls | None = None
