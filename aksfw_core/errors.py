"""The exception hierarchy: what went wrong, and whether trying again can help, with the
one rule that classifies an HTTP failure and the one `Retry-After` parser. Pure code.

Retry decisions are made from the class of an exception, never from its text, and no
exception text ever carries a secret. An error that came from an HTTP answer carries its
status.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime


class AksfwError(Exception):
    """Base of every error aksfw raises on purpose."""

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status of the answer that caused it, if one did."""
        self.attempts = 1
        """Attempts made before it was raised: more than one once a retry policy gave up."""

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}, after {self.attempts} attempts" if self.attempts > 1 else text


class InputError(AksfwError):
    """Input that can never succeed as given: a bad file, selector or setting."""


class ConfigError(InputError):
    """The settings, with what they select in Azure, cannot work (e.g. two monitored
    clusters would tag under one name): every call fails alike until they are fixed,
    whatever its input. Not the fault of a queue message, which is retried, not poisoned."""


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


def http_error(status: int, message: str, retry_after: float | None = None) -> AksfwError:
    """The error for an HTTP failure status, by the one rule every adapter uses:
    401/403 refused credentials; 429, 5xx and no status at all (the connection failed)
    transient, but 501 (the server does not implement the request: it never will); anything
    else a request that will fail again."""
    text = f"{message} (HTTP {status})" if status else message
    if status in (401, 403):
        return AuthError(text, status=status)
    if status == 429 or (status >= 500 and status != 501) or status == 0:
        return Retryable(text, retry_after, status=status or None)
    return NonRetryable(text, status=status)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` header (delta seconds or an HTTP date) in seconds; None if absent
    or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, moment - (time.time() if now is None else now))
