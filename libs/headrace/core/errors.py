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


class Conflict(TransientError):
    """Another writer changed the state since it was read: nothing was written. Read it again
    and decide again."""


class Fenced(HeadraceError):
    """This instance no longer owns the partition it is acting for: a newer owner has written
    the state. Drop the work; the owner handles it."""


class AuthenticationFailed(HeadraceError):
    """A broker or database refused the configured credentials (or TLS identity): permanent
    until the configuration changes, so the process reports it and stops instead of retrying."""
