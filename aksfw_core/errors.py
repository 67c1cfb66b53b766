"""The exception hierarchy: what went wrong, and whether trying again can help.

Retry decisions are made from the class of an exception, never from its text, and no
exception text ever carries a secret. An error that came from an HTTP answer carries its
status.
"""

from __future__ import annotations


class AksfwError(Exception):
    """Base of every error aksfw raises on purpose."""

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status of the answer that caused it, if one did."""


class InputError(AksfwError):
    """Input that can never succeed as given: a bad file, selector or setting."""


class Retryable(AksfwError):
    """A transient fault: trying again later may succeed."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        """Seconds the server asked us to wait before the next attempt, if it said."""


class NonRetryable(AksfwError):
    """A fault that repeats on every attempt: the request or the credentials are wrong."""


class AuthError(NonRetryable):
    """The server refused our credentials (HTTP 401/403, PAN-OS code 403)."""
