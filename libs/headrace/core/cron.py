"""Cron schedules as functions declare them (`triggers: [{cron, jitter?}]`).

Accepted forms:
- five fields (minute hour day-of-month month day-of-week), as Inngest's parser (robfig/cron
  with the standard fields) accepts, and the descriptors `@hourly`, `@daily`...;
- an optional zone prefix, `TZ=Europe/Paris 0 9 * * *` (or `CRON_TZ=`); without one, UTC;
- six fields with SECONDS FIRST (`*/5 * * * * *`): a headrace extension Inngest refuses, used
  for per-second schedules (robfig's and Quartz's order, not croniter's default).

Jitter (Inngest's `jitter`, 1 s to 5 min): a tick fires at its scheduled time plus a delay in
[1 s, jitter) derived from a stable seed, so every replica and every retry picks the same one.
"""

from __future__ import annotations

import datetime
import hashlib
import zoneinfo
from dataclasses import dataclass

from croniter import croniter

MIN_JITTER_MS = 1_000
MAX_JITTER_MS = 300_000
_ZONE_PREFIXES = ("TZ=", "CRON_TZ=")


class CronError(ValueError):
    """A cron expression or time zone that cannot be read."""


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    fields: str
    zone: zoneinfo.ZoneInfo
    seconds: bool

    def next_ms(self, after_ms: int) -> int | None:
        """The first tick strictly after `after_ms`; None when there is none (e.g. Feb 30)."""
        start = datetime.datetime.fromtimestamp(after_ms / 1000, self.zone)
        try:
            it = croniter(self.fields, start, second_at_beginning=self.seconds)
            tick = it.get_next(datetime.datetime)
        except (ValueError, KeyError):
            return None
        tick_ms = int(tick.timestamp() * 1000)
        return tick_ms if tick_ms > after_ms else None


def parse_cron(expression: str) -> CronSchedule:
    text = expression.strip()
    zone = zoneinfo.ZoneInfo("UTC")
    for prefix in _ZONE_PREFIXES:
        if text.startswith(prefix):
            name, _, text = text[len(prefix) :].partition(" ")
            try:
                zone = zoneinfo.ZoneInfo(name)
            # OSError: a name the zone database cannot even look up (too long, a directory).
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                raise CronError(f"unknown time zone {name!r}") from None
            text = text.strip()
            break
    count = len(text.split())
    seconds = count == 6
    if not text.startswith("@") and count not in (5, 6):
        raise CronError(f"{expression!r} needs 5 fields (or 6, seconds first), has {count}")
    if not croniter.is_valid(text, second_at_beginning=seconds):
        raise CronError(f"{expression!r} is not a valid cron schedule")
    return CronSchedule(expression=expression, fields=text, zone=zone, seconds=seconds)


def jitter_ms(jitter_max_ms: int, seed: str) -> int:
    """Inngest's deterministic jitter: in [1 s, max), the same for the same seed."""
    if jitter_max_ms <= 0:
        return 0
    if jitter_max_ms <= MIN_JITTER_MS:
        return MIN_JITTER_MS
    digest = int.from_bytes(hashlib.sha1(seed.encode()).digest()[:8], "big")
    return MIN_JITTER_MS + digest % (jitter_max_ms - MIN_JITTER_MS)
