"""What a consumer does with a record whose handler raised.

- An outage (a broker or database that does not answer, a timeout) is retried with backoff for
  as long as it lasts: the record waits, nothing is lost, and the partition resumes by itself.
- A record that can never succeed (it does not decode, or an error says retrying cannot help) is
  set aside at once in the dead-letter topic, so it cannot stall its partition.
- A record of a partition this member has lost (`Fenced`: a newer owner has acted) is left
  unfinished: never committed past here, so the partition's owner handles it.
- Anything else is a bug until proven otherwise: retried a bounded number of times (the cause may
  be a race that clears), then dead-lettered with its reason, where an operator can see it and
  publish it again once fixed.
"""

from __future__ import annotations

import enum

import msgspec

from headrace.core.errors import Fenced, HeadraceError


class Disposition(enum.Enum):
    RETRY = "retry"
    DEAD_LETTER = "dead-letter"
    RETRY_BOUNDED = "retry-bounded"
    LEAVE = "leave"


def classify(err: BaseException) -> Disposition:
    """By the project's own errors: the adapters translate their drivers' at their edge
    (headrace.adapters.kafka.errors, headrace.adapters.cassandra.session), so a driver error
    that reaches here untranslated is one nobody has judged yet."""
    if isinstance(err, msgspec.DecodeError | msgspec.ValidationError):
        return Disposition.DEAD_LETTER
    if isinstance(err, Fenced):
        return Disposition.LEAVE
    if isinstance(err, HeadraceError):
        return Disposition.RETRY if err.retryable else Disposition.DEAD_LETTER
    # A socket error or timeout outside any adapter (an HTTP call, a stalled await): an outage.
    if isinstance(err, OSError | TimeoutError):
        return Disposition.RETRY
    return Disposition.RETRY_BOUNDED
