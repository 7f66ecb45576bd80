"""The rate limit on each client's writing requests (applied by api/rate_limit.py), as settings
carry it."""

from __future__ import annotations

from dataclasses import dataclass

from headrace.flow.gcra import Gcra


@dataclass(frozen=True)
class ClientRate:
    """`per_second` requests per second per client, `burst` of them at once; 0: no limit."""

    per_second: float = 0.0
    burst: int = 0

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def gcra(self) -> Gcra:
        return Gcra(1000.0 / self.per_second, max(self.burst, 1))
