"""aiokafka's errors as headrace's own, at the adapter's edge: code above the adapters decides
by `HeadraceError.retryable`, never by a driver's classes (see headrace.runtime.failures).

- An outage (a broker that does not answer, a lost connection, a request that timed out, or
  any error aiokafka marks retriable) becomes `KafkaUnavailable`, retried for as long as it
  lasts.
- A record the broker refuses for good (over the size limit) becomes `RecordRejected`.
- Any other KafkaError passes through as raised: nobody has decided yet whether retrying helps,
  so callers treat it as a bug that may clear (a bounded number of retries).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
)

from headrace.core.errors import HeadraceError, TransientError


class KafkaUnavailable(TransientError):
    """Kafka did not answer, or not in time: trying again later can work. A publish that timed
    out may have been written; consumers are idempotent."""


class RecordRejected(HeadraceError):
    """The broker refused the record for good (too large): publishing it again cannot help."""


# aiokafka marks some outage symptoms not retriable: a send that timed out, a lost connection.
_OUTAGES = (KafkaConnectionError, KafkaTimeoutError)


def _described(error: KafkaError) -> str:
    # aiokafka's errors name their class in str() when they carry a message, not otherwise.
    text = str(error)
    name = type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def translate(error: BaseException) -> BaseException:
    """The project's error for a driver error; anything else as it is."""
    if isinstance(error, MessageSizeTooLargeError):
        translated: BaseException = RecordRejected(_described(error))
    elif isinstance(error, KafkaError) and (error.retriable or isinstance(error, _OUTAGES)):
        translated = KafkaUnavailable(_described(error))
    else:
        return error
    translated.__cause__ = error
    return translated


P = ParamSpec("P")
R = TypeVar("R")


def translating(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an adapter coroutine so the driver's errors leave it translated."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except KafkaError as err:
            translated = translate(err)
            if translated is err:
                raise
            raise translated from err

    return wrapper
