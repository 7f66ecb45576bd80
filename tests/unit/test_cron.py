"""Cron schedules: next ticks, zones, the seconds extension, and deterministic jitter."""

from __future__ import annotations

import datetime

import pytest

from headrace.core.cron import CronError, jitter_ms, parse_cron


def _ms(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text).timestamp() * 1000)


def test_a_five_field_schedule_ticks_in_utc_by_default() -> None:
    schedule = parse_cron("0 9 * * *")
    assert schedule.next_ms(_ms("2026-03-01T08:59:59+00:00")) == _ms("2026-03-01T09:00:00+00:00")
    # Strictly after: a tick is never its own successor.
    assert schedule.next_ms(_ms("2026-03-01T09:00:00+00:00")) == _ms("2026-03-02T09:00:00+00:00")


def test_the_zone_prefix_follows_daylight_saving() -> None:
    schedule = parse_cron("TZ=Europe/Paris 0 9 * * *")
    # 9:00 in Paris is 8:00 UTC in winter and 7:00 UTC in summer.
    assert schedule.next_ms(_ms("2026-03-28T12:00:00+00:00")) == _ms("2026-03-29T07:00:00+00:00")
    assert schedule.next_ms(_ms("2026-03-27T12:00:00+00:00")) == _ms("2026-03-28T08:00:00+00:00")
    assert parse_cron("CRON_TZ=Asia/Tokyo 0 0 * * *").zone.key == "Asia/Tokyo"


def test_six_fields_put_seconds_first() -> None:
    schedule = parse_cron("*/5 * * * * *")
    assert schedule.next_ms(_ms("2026-03-01T00:00:01.500+00:00")) == _ms(
        "2026-03-01T00:00:05+00:00"
    )


def test_a_schedule_that_never_ticks_has_no_next() -> None:
    assert parse_cron("0 0 30 2 *").next_ms(_ms("2026-01-01T00:00:00+00:00")) is None


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("61 * * * *", "not a valid cron schedule"),
        ("* * * * * * *", "needs 5 fields"),
        ("TZ=Nowhere/Town 0 * * * *", "unknown time zone 'Nowhere/Town'"),
        # Found beside the API fuzz: a name too long for a file name was an OSError (a 500).
        ("TZ=" + "a" * 10_000 + " 0 * * * *", "unknown time zone 'aaa"),
        ("TZ=America 0 * * * *", "unknown time zone 'America'"),
    ],
)
def test_bad_schedules_are_refused(expression: str, problem: str) -> None:
    with pytest.raises(CronError, match=problem):
        parse_cron(expression)


def test_jitter_is_stable_per_seed_and_within_its_range() -> None:
    assert jitter_ms(0, "seed") == 0
    assert jitter_ms(1_000, "seed") == 1_000
    values = {jitter_ms(60_000, f"tick-{n}") for n in range(200)}
    assert all(1_000 <= v < 60_000 for v in values) and len(values) > 100
    assert jitter_ms(60_000, "tick-1") == jitter_ms(60_000, "tick-1")
