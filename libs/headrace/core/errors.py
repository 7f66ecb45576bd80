"""Errors that say whether to retry."""

from __future__ import annotations


class HeadraceError(Exception):
    """Base of headrace's own errors. `retryable` tells the caller whether trying again can help."""

    retryable: bool = False


class InputError(HeadraceError):
    """Input that is wrong and will stay wrong: answer 4xx, store nothing."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TransientError(HeadraceError):
    """A dependency that failed now and may work later (a broker, a database, an app)."""

    retryable = True
