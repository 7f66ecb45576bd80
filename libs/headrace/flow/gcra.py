"""The generic cell rate algorithm, as Inngest applies it to throttle and rate limit.

State is one number per key, the theoretical arrival time (TAT). With emission interval
`e = period / limit` and a capacity of `c` admissions at once, a request at `now` is admitted
when `max(tat, now) + e - c * e <= now`, and then moves the TAT to `max(tat, now) + e`.

- Throttle: capacity `limit + burst` ([GO] constraintapi acquire.lua, maxBurst = limit + burst
  - 1): `limit + burst` runs start at once, then one every `period / limit`.
- Rate limit: capacity `limit // 10 + 1` ([GO] constraintapi lua.go, burst = limit / 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Float arithmetic on fractional intervals (1000 ms / 3) must not refuse an admission that is
# due exactly now.
_EPSILON_MS = 1e-6


@dataclass(frozen=True)
class Gcra:
    emission_ms: float
    capacity: int

    @classmethod
    def throttle(cls, limit: int, period_ms: int, burst: int) -> Gcra:
        limit = max(limit, 1)
        return cls(period_ms / limit, limit + max(burst, 0))

    @classmethod
    def rate_limit(cls, limit: int, period_ms: int) -> Gcra:
        limit = max(limit, 1)
        return cls(period_ms / limit, limit // 10 + 1)

    def admit(self, tat: float | None, now_ms: int) -> tuple[bool, float]:
        """(admitted, the TAT to keep): the new TAT when admitted, else the one given."""
        base = now_ms if tat is None else max(tat, now_ms)
        new_tat = base + self.emission_ms
        if new_tat - self.capacity * self.emission_ms <= now_ms + _EPSILON_MS:
            return True, new_tat
        assert tat is not None  # a key never seen admits (capacity >= 1)
        return False, tat

    def next_at(self, tat: float | None, now_ms: int) -> int:
        """The first millisecond at which a request would be admitted."""
        if tat is None:
            return now_ms
        allowed = max(tat, now_ms) + self.emission_ms - self.capacity * self.emission_ms
        return max(now_ms, math.ceil(allowed - _EPSILON_MS))
