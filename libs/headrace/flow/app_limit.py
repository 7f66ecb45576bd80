"""How many calls one app is sent at once: a limit that adapts to how the app answers, as a pure
decision (the executor's `AppGate` times the calls and waits for the slots).

An app served by one process is busy with one call at a time, and queues the rest: sending it 200
calls at once makes each one 200 times slower, the engine and the app spend their CPU on
connections and waiting (on a 2-core machine a burst ran 2.5 times faster with 16 calls in flight
than with 200), and calls time out while the app, which cannot see that they were abandoned, goes
on working through them: a backlog that only grows. An app whose calls wait on I/O, on the other
hand, takes as many at once as it is sent. So the limit is learnt, per app, as TCP Vegas learns a
congestion window:

- Each kind of call (one function's call at one position of its run: the same step body, so
  about the same work each time) has a baseline: its time when the app was not queueing it. A
  call that took `ratio` times its baseline spent about `1 - 1/ratio` of its time queued, so
  about `limit * (1 - 1/ratio)` of the calls in flight are queued at the app (smoothed over a
  few calls).
- Fewer than `alpha` queued: the app has room, and the limit grows by one, but only while the
  calls in flight use at least half of it (a limit far above the demand says nothing of the
  app). More than `beta` queued: the limit shrinks by one.
- A call the app did not answer (a timeout, a refused connection) or refused as overloaded (429,
  503) halves the limit: the app is not keeping up, and what it was sent is still in its queue.

A baseline is learnt from calls sent while at most `minimum` were in flight, which cannot have
waited long behind others: now and then (after 32 answers, then twice as many each time, up to
every `PROBE_EVERY`) the limit goes to the minimum for `PROBE_CALLS` such calls and then returns
to where it was, so that baselines first learnt while the app was busy, and steps which became
slower for good, are learnt as they are rather than misread for ever. Any faster call lowers its
baseline at once. The limit starts at 16, so that a run's parallel steps go at once on an app
that takes them.
"""

from __future__ import annotations

import math
from collections import OrderedDict

# The limit goes to the minimum for this many calls sent at it, after FIRST_PROBE answers and
# then twice as many each time, up to every PROBE_EVERY.
FIRST_PROBE = 32
PROBE_EVERY = 2000
PROBE_CALLS = 8
# Times under this are taken as this: below it, the differences are noise.
FLOOR_MS = 1.0
# How many kinds of call keep a baseline (the least recently seen are forgotten).
KINDS = 4096
# The weight of the newest call in the smoothed ratio.
SMOOTHING = 0.2
# Answers that say the app is overloaded.
OVERLOADED = frozenset({429, 503})


class AppLimit:
    def __init__(self, maximum: int, *, initial: int = 16, minimum: int = 2) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.limit = float(max(self.minimum, min(initial, maximum)))
        self._baselines: OrderedDict[str, float] = OrderedDict()
        self._ratio = 1.0
        self._answers = 0
        self._next_probe = FIRST_PROBE
        self._probe: tuple[float, int] | None = None  # the limit to return to, calls still due

    @property
    def allowed(self) -> int:
        """Calls that may be in flight at once now."""
        return int(self.limit)

    def answered(self, kind: str, took_ms: float, in_flight: int) -> None:
        """A call of `kind` was answered after `took_ms`; `in_flight` calls were out when it
        was sent (itself included)."""
        took = max(took_ms, FLOOR_MS)
        clean = in_flight <= self.minimum
        known = self._baselines.get(kind)
        if known is None or took < known:
            self._baselines[kind] = took
        elif clean:
            self._baselines[kind] = (known + took) / 2
        self._baselines.move_to_end(kind)
        if len(self._baselines) > KINDS:
            self._baselines.popitem(last=False)
        if self._probing(clean):
            return
        self._ratio += SMOOTHING * (took / self._baselines[kind] - self._ratio)
        queued = self.limit * (1 - 1 / self._ratio)
        # Vegas's thresholds, growing slowly with the limit (Netflix's concurrency-limits).
        scale = max(1.0, math.log10(self.limit))
        if queued > 6 * scale:
            self.limit = max(float(self.minimum), self.limit - 1)
        elif queued < 3 * scale and in_flight >= self.limit / 2:
            self.limit = min(float(self.maximum), self.limit + 1)

    def _probing(self, clean: bool) -> bool:
        """Whether the limit is held at the minimum to learn baselines (starting or ending
        that when due)."""
        self._answers += 1
        if self._probe is not None:
            back_to, due = self._probe
            due -= clean
            self._probe = (back_to, due) if due > 0 else None
            if self._probe is None:
                self.limit, self._ratio = back_to, 1.0
            return True
        if self._answers >= self._next_probe and self.limit > self.minimum:
            self._answers = 0
            self._next_probe = min(2 * self._next_probe, PROBE_EVERY)
            self._probe = (self.limit, PROBE_CALLS)
            self.limit = float(self.minimum)
            return True
        return False

    def failed(self) -> None:
        """A call got no answer, or one that says the app is overloaded."""
        self.limit = max(float(self.minimum), self.limit / 2)
        if self._probe is not None:
            back_to, due = self._probe
            self._probe = (max(float(self.minimum), back_to / 2), due)
