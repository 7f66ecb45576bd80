"""How many calls one app is sent at once: a limit that adapts to how the app answers, as a pure
decision (the executor's `AppGate` times the calls and waits for the slots).

An app served by one process is busy with one call at a time, and queues the rest: sending it 200
calls at once makes each one 200 times slower, the engine and the app spend their CPU on
connections and waiting (on a 2-core machine a burst ran 2.5 times faster with 16 calls in flight
than with 200), and calls time out while the app, which cannot see that they were abandoned, goes
on working through them: a backlog that only grows. An app whose calls wait on I/O, on the other
hand, takes as many at once as it is sent, and so does one whose steps call a model or an API
that answers in one second or in three, whatever else is in flight. So the limit is learnt, per
app, as TCP Vegas learns a congestion window:

- Each kind of call (one function's call at one position of its run: the same step body, so
  about the same work each time) has a baseline: its time when the app was not queueing it. A
  call that took `ratio` times its baseline spent about `1 - 1/ratio` of its time queued, so of
  the `n` calls in flight when it was sent about `n * (1 - 1/ratio)` were queued at the app.
- The limit is judged on a window of answers to calls sent since it last changed (calls sent
  before say nothing of the limit as it is, and are still coming back when it has just grown:
  judged on them, it would grow past what the app takes before the first sign of queueing came
  back, and then shrink as far below it, for ever). Averaged over the window: fewer than
  `alpha` queued, and the calls in flight using at least half of the limit (a limit far above
  the demand says nothing of the app): the app has room, and the limit grows: it doubles
  until the app first shows that it queues (as TCP's slow start), then grows by a quarter.
  More than `beta` queued: it goes to about as many calls as the app was working on (`n /
  ratio`) plus `alpha`. Both thresholds are at least a share of the limit, so that steps whose
  time varies by itself, or an engine busy with other work, are not read as an app that
  queues.
- A call the app did not answer (a timeout, a refused connection) or refused as overloaded (429,
  503) halves the limit: the app is not keeping up, and what it was sent is still in its queue.

A baseline is learnt from calls sent while at most `minimum` were in flight, which cannot have
waited long behind others: the average of the last few, as the time of a step that varies is its
usual time, not its fastest. Until a kind has such a call its baseline is its fastest call. Now
and then the limit goes to the minimum for `PROBE_CALLS` such calls and then returns to where it
was, so that baselines first learnt while the app was busy, and steps which became slower for
good, are learnt as they are rather than misread for ever: after 32 answers, then twice as many
each time, up to every `PROBE_EVERY`, and never sooner than `PROBE_SPACING` times as long as the
last probe took after it ended, so that probing costs an app whose calls each take seconds no
more of its time than one whose calls take milliseconds. The limit starts at 16, so that a run's
parallel steps go at once on an app that takes them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

# The limit goes to the minimum for this many calls sent at it, after FIRST_PROBE answers and
# then twice as many each time, up to every PROBE_EVERY.
FIRST_PROBE = 32
PROBE_EVERY = 2000
PROBE_CALLS = 8
# A probe comes no sooner than this many times its predecessor's length after that one ended.
PROBE_SPACING = 50
# Times under this are taken as this: below it, the differences are noise.
FLOOR_MS = 1.0
# How many kinds of call keep a baseline (the least recently seen are forgotten).
KINDS = 4096
# A baseline is the average of about this many of the kind's latest calls sent clean.
BASELINE_CALLS = 4
# Answers the limit is judged on, at most (half the limit when that is fewer).
WINDOW = 8
# The least share of the limit taken as queued before the limit shrinks (beta), and under
# which it may grow (alpha): calls a sixth slower than their baseline are not queueing.
SHRINK_SHARE = 0.3
GROW_SHARE = 0.15
GROWTH = 1.25
# Answers that say the app is overloaded.
OVERLOADED = frozenset({429, 503})


@dataclass
class _Baseline:
    ms: float
    clean_calls: int  # 0: the kind's fastest call so far, none of them sent clean


@dataclass
class _Window:
    """Answers to calls sent since the limit last changed."""

    answers: int = 0
    ratios: float = 0.0
    in_flight: int = 0


@dataclass
class _Probe:
    """The limit held at the minimum: the limit to return to, clean calls still due."""

    back_to: float
    due: int
    began_ms: float


class AppLimit:
    def __init__(self, maximum: int, *, initial: int = 16, minimum: int = 2) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.limit = float(max(self.minimum, min(initial, maximum)))
        self._baselines: OrderedDict[str, _Baseline] = OrderedDict()
        self._epoch = 0
        self._window = _Window()
        # Doubling until the app first shows it queues, as TCP's slow start; a quarter after.
        self._slow_start = True
        self._answers = 0
        self._next_probe = FIRST_PROBE
        self._no_probe_before_ms = 0.0
        self._probe: _Probe | None = None

    @property
    def allowed(self) -> int:
        """Calls that may be in flight at once now."""
        return int(self.limit)

    @property
    def epoch(self) -> int:
        """Changes whenever the limit does: what a call is sent under, to be given back with
        its answer."""
        return self._epoch

    def answered(
        self, kind: str, took_ms: float, in_flight: int, now_ms: float, epoch: int
    ) -> None:
        """A call of `kind` was answered at `now_ms` after `took_ms`; `in_flight` calls were
        out when it was sent (itself included), under the limit's `epoch`."""
        took = max(took_ms, FLOOR_MS)
        clean = in_flight <= self.minimum
        baseline = self._learn(kind, took, clean)
        if self._probing(clean, now_ms) or epoch != self._epoch:
            return
        window = self._window
        window.answers += 1
        window.ratios += took / baseline
        window.in_flight += in_flight
        if window.answers < min(WINDOW, max(1, self.allowed // 2)):
            return
        ratio = window.ratios / window.answers
        in_flight_then = window.in_flight / window.answers
        queued = in_flight_then * (1 - 1 / ratio)
        # Vegas's thresholds, growing slowly with the limit (Netflix's concurrency-limits).
        scale = max(1.0, math.log10(self.limit))
        alpha = max(3 * scale, GROW_SHARE * self.limit)
        if queued > max(6 * scale, SHRINK_SHARE * self.limit):
            self._slow_start = False
            self._set(min(self.limit - 1, in_flight_then / ratio + alpha))
        elif queued < alpha and in_flight_then >= self.limit / 2:
            growth = 2.0 if self._slow_start else GROWTH
            self._set(max(self.limit + 1, self.limit * growth))
        else:
            self._window = _Window()

    def failed(self) -> None:
        """A call got no answer, or one that says the app is overloaded."""
        self._slow_start = False
        self._set(self.limit / 2)
        if self._probe is not None:
            self._probe.back_to = max(float(self.minimum), self._probe.back_to / 2)

    def _set(self, limit: float) -> None:
        self.limit = float(max(self.minimum, min(self.maximum, int(limit))))
        self._epoch += 1
        self._window = _Window()

    def _learn(self, kind: str, took: float, clean: bool) -> float:
        """The kind's baseline, learnt from this call too."""
        known = self._baselines.get(kind)
        if known is None:
            known = self._baselines[kind] = _Baseline(took, int(clean))
        elif clean:
            known.clean_calls = min(known.clean_calls + 1, BASELINE_CALLS)
            known.ms += (took - known.ms) / known.clean_calls
        elif known.clean_calls == 0:
            known.ms = min(known.ms, took)
        self._baselines.move_to_end(kind)
        if len(self._baselines) > KINDS:
            self._baselines.popitem(last=False)
        return known.ms

    def _probing(self, clean: bool, now_ms: float) -> bool:
        """Whether the limit is held at the minimum to learn baselines (starting or ending
        that when due)."""
        self._answers += 1
        probe = self._probe
        if probe is not None:
            probe.due -= clean
            if probe.due <= 0:
                self._probe = None
                self._set(probe.back_to)
                self._no_probe_before_ms = now_ms + PROBE_SPACING * (now_ms - probe.began_ms)
            return True
        if (
            self._answers >= self._next_probe
            and now_ms >= self._no_probe_before_ms
            and self.limit > self.minimum
        ):
            self._answers = 0
            self._next_probe = min(2 * self._next_probe, PROBE_EVERY)
            self._probe = _Probe(back_to=self.limit, due=PROBE_CALLS, began_ms=now_ms)
            self._set(self.minimum)
            return True
        return False
