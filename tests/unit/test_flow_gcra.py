"""The GCRA limiter shared by throttle and rate limit, on a fake clock."""

from __future__ import annotations

import itertools

from headrace.core.clock import FakeClock
from headrace.flow.gcra import Gcra


async def test_a_throttle_starts_limit_plus_burst_at_once_then_one_per_interval() -> None:
    # Inngest's example: limit 2 per 6 s with burst 1: three at once, then one every 3 s.
    clock = FakeClock()
    gcra = Gcra.throttle(limit=2, period_ms=6_000, burst=1)
    tat: float | None = None
    admitted = []
    for _ in range(5):
        ok, tat = gcra.admit(tat, clock.now_ms())
        admitted.append(ok)
    assert admitted == [True, True, True, False, False]
    assert tat is not None
    assert gcra.next_at(tat, clock.now_ms()) == clock.now_ms() + 3_000
    await clock.advance(2_999)
    assert not gcra.admit(tat, clock.now_ms())[0]
    await clock.advance(1)
    ok, tat = gcra.admit(tat, clock.now_ms())
    assert ok and not gcra.admit(tat, clock.now_ms())[0]
    await clock.advance(3_000)
    assert gcra.admit(tat, clock.now_ms())[0]


async def test_a_throttle_without_burst_spreads_its_limit_over_the_period() -> None:
    clock = FakeClock()
    gcra = Gcra.throttle(limit=3, period_ms=1_000, burst=0)
    tat: float | None = None
    starts = []
    for _ in range(300):  # 3 s in 10 ms ticks
        ok, tat = gcra.admit(tat, clock.now_ms())
        while ok:
            starts.append(clock.now_ms())
            ok, tat = gcra.admit(tat, clock.now_ms())
        await clock.advance(10)
    first = starts[0]
    # Three at once, then one every 333.3 ms: 3 + 8 in the next 2.99 s.
    assert [s - first for s in starts[:3]] == [0, 0, 0]
    assert len(starts) == 3 + 8
    gaps = [b - a for a, b in itertools.pairwise(starts[2:])]
    assert all(330 <= gap <= 340 for gap in gaps), gaps


async def test_a_rate_limit_admits_a_tenth_of_its_limit_plus_one_at_once() -> None:
    clock = FakeClock()
    assert Gcra.rate_limit(limit=1, period_ms=3_600_000).capacity == 1
    gcra = Gcra.rate_limit(limit=20, period_ms=60_000)
    tat: float | None = None
    results = []
    for _ in range(10):
        ok, tat = gcra.admit(tat, clock.now_ms())
        results.append(ok)
    assert results.count(True) == 3 and results[:3] == [True] * 3
    await clock.advance(3_000)  # one emission interval (60 s / 20)
    assert gcra.admit(tat, clock.now_ms())[0]


async def test_a_refusal_leaves_the_state_unchanged() -> None:
    clock = FakeClock()
    gcra = Gcra.rate_limit(limit=1, period_ms=10_000)
    ok, tat = gcra.admit(None, clock.now_ms())
    assert ok
    for _ in range(5):
        refused, same = gcra.admit(tat, clock.now_ms())
        assert not refused and same == tat
    await clock.advance(10_000)
    assert gcra.admit(tat, clock.now_ms())[0]
