"""The limit of calls an app is sent at once (`flow.app_limit`), driven by simulated apps: one
that queues what it is sent learns a small limit, one whose calls wait on I/O the largest, one
whose calls vary by themselves is not taken for one that queues, and one that stops answering is
halved down to the minimum. Time is the simulation's: with `limit` calls of `took` ms in flight,
an answer comes every `took / limit` ms."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from headrace.flow.app_limit import PROBE_CALLS, PROBE_EVERY, PROBE_SPACING, AppLimit

MAXIMUM = 200
_now_ms = {"now": 0.0}


def _answer(limit: AppLimit, kind: str, took: float, in_flight: int) -> None:
    _now_ms["now"] += took / in_flight
    limit.answered(kind, took, in_flight, _now_ms["now"], limit.epoch)


def _serve(limit: AppLimit, took_ms, calls: int = 3000, kinds: tuple[str, ...] = ("s",)) -> None:
    """Calls answered one after another with the limit in use (more calls waiting than it
    allows); `took_ms(kind, in_flight)` says how long each took."""
    for i in range(calls):
        kind = kinds[i % len(kinds)]
        in_flight = limit.allowed
        _answer(limit, kind, took_ms(kind, in_flight), in_flight)


def _settled(limit: AppLimit, took_ms) -> int:
    """The limit once no probe holds it at the minimum (a probe lasts a few calls)."""
    for _ in range(50):
        if limit.allowed > limit.minimum:
            break
        in_flight = limit.allowed
        _answer(limit, "s", took_ms("s", in_flight), in_flight)
    return limit.allowed


def _run_app(
    limit: AppLimit,
    service_ms: Callable[[], float],
    seconds: float,
    workers: int | None = None,
    after_s: float = 0,
) -> tuple[float, float]:
    """An app sent calls as fast as the limit allows for `seconds`, each answered when done:
    its `workers` (None: as many as it is sent) work on one call at a time, in arrival order,
    for `service_ms()` each. Calls in flight on average from `after_s` on, and answers a
    second."""
    now = 0.0
    free = [0.0] * (workers or 0)
    out: list[tuple[float, float, int, int]] = []  # answered at, took, in flight, epoch
    in_flight = answers = 0
    weighted = 0.0
    while now < seconds * 1000:
        while in_flight < limit.allowed:
            in_flight += 1
            done = now + service_ms()
            if workers:
                worker = free.index(min(free))
                done = free[worker] = max(now, free[worker]) + done - now
            heapq.heappush(out, (done, done - now, in_flight, limit.epoch))
        at, took, sent_with, epoch = heapq.heappop(out)
        weighted += in_flight * max(0.0, at - max(now, after_s * 1000))
        now = at
        in_flight -= 1
        answers += 1
        limit.answered("s", took, sent_with, now, epoch)
    return weighted / (now - after_s * 1000), answers / seconds


def _one_process(service_ms: float, workers: int = 1):
    """An app that works on `workers` calls at a time and queues the rest."""
    return lambda kind, in_flight: service_ms * max(1.0, in_flight / workers)


def test_an_app_that_queues_its_calls_is_sent_a_few_more_than_it_works_on() -> None:
    for workers in (1, 2, 4, 16):
        limit = AppLimit(MAXIMUM)
        seen = []
        for _ in range(10):  # past several probes: the limit does not creep up
            _serve(limit, _one_process(3.0, workers), calls=PROBE_EVERY + 100)
            seen.append(_settled(limit, _one_process(3.0, workers)))
        assert all(workers < allowed <= 2 * workers + 8 for allowed in seen), (workers, seen)


def test_an_app_that_queues_every_kind_of_call_is_sent_a_few_at_a_time() -> None:
    limit = AppLimit(MAXIMUM)
    kinds = tuple(f"step {i}" for i in range(11))
    _serve(limit, lambda kind, in_flight: len(kind) * max(1, in_flight), kinds=kinds)
    assert 2 < _settled(limit, lambda kind, in_flight: 6.0 * max(1, in_flight)) <= 10


def test_an_app_whose_calls_wait_on_io_is_sent_up_to_the_maximum() -> None:
    limit = AppLimit(MAXIMUM)
    _serve(limit, lambda kind, in_flight: 250.0)
    assert _settled(limit, lambda kind, in_flight: 250.0) == MAXIMUM


def test_steps_of_different_lengths_are_not_taken_for_queueing() -> None:
    limit = AppLimit(MAXIMUM)
    lengths = {"fast": 2.0, "api call": 400.0, "slow": 2_000.0}
    _serve(limit, lambda kind, in_flight: lengths[kind], kinds=tuple(lengths))
    assert max(limit.allowed, _settled(limit, lambda k, n: 2.0)) == MAXIMUM


def test_an_app_whose_steps_take_one_to_three_seconds_by_themselves_is_sent_its_demand() -> None:
    # A model or a remote API: the time varies from call to call, whatever else is in flight.
    times = random.Random(7)
    in_flight, _ = _run_app(AppLimit(MAXIMUM), lambda: times.uniform(1_000, 3_000), 600)
    assert in_flight > 0.9 * MAXIMUM


def test_an_app_whose_calls_wait_seconds_on_io_is_sent_the_maximum_within_a_few_calls() -> None:
    # A burst of runs whose steps call a slow API: growing by one call, or by a quarter, per
    # round trip of a second took half a minute to reach what the app takes.
    limit = AppLimit(MAXIMUM)
    _run_app(limit, lambda: 1_000.0, 12)
    assert limit.allowed == MAXIMUM


def test_probing_costs_an_app_whose_calls_take_seconds_a_small_share_of_its_time() -> None:
    # Each probe holds the limit at the minimum for a few calls: seconds, with such calls.
    for took in (1_000.0, 10_000.0):
        # Past the first probes, which come after a few answers.
        seconds = took * 0.72  # 144,000 answers at the maximum
        in_flight, _ = _run_app(
            AppLimit(MAXIMUM), lambda took=took: took, seconds, after_s=seconds / 6
        )
        assert in_flight > 0.97 * MAXIMUM


def test_an_app_answering_a_third_slower_than_its_unqueued_calls_is_not_held_back() -> None:
    # An engine busy with other work (its event loop late) sees its calls take longer.
    times = random.Random(11)
    in_flight, _ = _run_app(AppLimit(MAXIMUM), lambda: times.uniform(1_000, 1_300), 600)
    assert in_flight > 0.9 * MAXIMUM


def test_an_app_with_a_few_workers_is_kept_busy_without_a_long_queue() -> None:
    # The answers that show queueing come back a queue's length after the limit grew: judged
    # on the calls sent before, the limit overshot and then undershot the app, round and round.
    for workers in (4, 16):
        in_flight, answers = _run_app(AppLimit(MAXIMUM), lambda: 3.0, 30, workers=workers)
        assert answers > 0.97 * workers * 1000 / 3.0, workers
        assert workers < in_flight <= 2 * workers + 8, workers


def test_the_limit_grows_only_while_it_is_used() -> None:
    limit = AppLimit(MAXIMUM, initial=10)
    seen = set()
    for _ in range(1000):
        _answer(limit, "s", 5.0, in_flight=2)
        seen.add(limit.allowed)
    assert seen == {10, 2}  # 2 while probing


def test_a_step_that_became_slower_for_good_is_learnt_and_the_limit_grows_again() -> None:
    limit = AppLimit(MAXIMUM)
    _serve(limit, lambda kind, in_flight: 250.0, calls=500)
    assert _settled(limit, lambda kind, in_flight: 250.0) == MAXIMUM
    # Ten times slower at once reads as queueing until a probe has learnt it.
    _serve(limit, lambda kind, in_flight: 2_500.0, calls=PROBE_EVERY + 300)
    assert _settled(limit, lambda k, n: 2_500.0) == MAXIMUM


def test_calls_the_app_does_not_answer_halve_the_limit_down_to_the_minimum() -> None:
    limit = AppLimit(MAXIMUM, initial=64, minimum=2)
    limit.failed()
    assert limit.allowed == 32
    for _ in range(10):
        limit.failed()
    assert limit.allowed == 2


def test_a_probe_at_the_minimum_returns_to_the_limit_before_it_less_what_failed_meanwhile() -> None:
    limit = AppLimit(MAXIMUM)
    _serve(limit, lambda kind, in_flight: 250.0, calls=4 * PROBE_EVERY)
    assert _settled(limit, lambda kind, in_flight: 250.0) == MAXIMUM
    calls = 0
    while limit.allowed == MAXIMUM and calls <= PROBE_SPACING * PROBE_EVERY:
        _serve(limit, lambda kind, in_flight: 250.0, calls=1)
        calls += 1
    assert limit.allowed == 2  # a probe, at most PROBE_EVERY answers and a while after the last
    limit.failed()
    _serve(limit, lambda kind, in_flight: 250.0, calls=PROBE_CALLS)
    assert limit.allowed == MAXIMUM // 2


def test_the_limit_stays_within_its_bounds() -> None:
    small = AppLimit(3, initial=10, minimum=5)
    assert small.allowed == 3 and small.minimum == 3
    _serve(small, lambda kind, in_flight: 1.0)
    assert small.allowed == 3
