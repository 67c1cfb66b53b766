"""The one retry policy for a bounded outside call: transient faults only, exponential
backoff with jitter, `Retry-After` honoured as a minimum wait, a bounded number of attempts.

Long outages are not waited out here: the queue carries them (DESIGN section 6). The only
loop that waits outages out is `aksfw watch`'s reconnect and publish loop
(`aksfw_core.watcher.timing`), which runs in its own pod with no queue behind it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import tenacity

from aksfw_core.errors import Retryable
from aksfw_core.logs import log_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrySettings:
    """How hard to try a call that fails transiently."""

    attempts: int = 4
    """Attempts in all, the first included."""
    initial_wait_s: float = 0.5
    """Seconds before the first retry; doubles with each retry (plus jitter)."""
    max_wait_s: float = 20.0
    """Seconds: cap on one backoff wait."""
    max_retry_after_s: float = 60.0
    """Seconds: a longer `Retry-After` is not slept through; the error is raised instead."""


class OverallDeadline:
    """One bound on a whole piece of work, across its requests and their retries (the
    command line's `--timeout`): no attempt starts and no backoff wait runs past it, and
    each request's own deadline is cut to the time left (`time_left`)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.stopped = False
        """A retry loop gave up because of it (the next wait would pass it)."""

    def left(self) -> float:
        """Seconds left (0 or less: passed)."""
        return self.ends - time.monotonic()

    def reached(self) -> bool:
        """It passed, or a retry loop gave up because of it."""
        return self.stopped or self.left() <= _SLACK_S


_SLACK_S = 0.05
"""Seconds: a request cut to the time left fails a moment before the instant itself."""

_overall: ContextVar[OverallDeadline | None] = ContextVar("aksfw_overall_deadline", default=None)


@contextmanager
def overall_deadline(seconds: float) -> Iterator[OverallDeadline]:
    """Bound every retry loop and request of the block (in this context) to `seconds`."""
    bound = OverallDeadline(seconds)
    token = _overall.set(bound)
    try:
        yield bound
    finally:
        _overall.reset(token)


def current_deadline() -> OverallDeadline | None:
    """The overall deadline of the block running, if any."""
    return _overall.get()


def time_left(seconds: float) -> float:
    """`seconds`, cut to what the overall deadline has left (never below a millisecond:
    a request given no time fails at once, as the deadline asks)."""
    bound = _overall.get()
    if bound is None:
        return seconds
    return max(min(seconds, bound.left()), 0.001)


def pause(seconds: float) -> None:
    """Wait between attempts. Tests replace this one function to skip or record waits."""
    time.sleep(seconds)


def retrying(
    settings: RetrySettings, what: str, overall: OverallDeadline | None = None
) -> tenacity.Retrying:
    """A tenacity controller that retries `Retryable` errors of the call `what` describes.

    The last error is re-raised once attempts run out, its `attempts` set to their number,
    or once the next wait would end past `overall` (default: the block's
    `overall_deadline`, if any).
    """
    bound = overall if overall is not None else _overall.get()
    backoff = tenacity.wait_random_exponential(
        multiplier=settings.initial_wait_s, max=settings.max_wait_s
    )

    def wait(state: tenacity.RetryCallState) -> float:
        return max(backoff(state), _retry_after(state) or 0.0)

    def worth_retrying(error: BaseException) -> bool:
        if not isinstance(error, Retryable):
            return False
        return error.retry_after is None or error.retry_after <= settings.max_retry_after_s

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log_event(
            log,
            "retry",
            logging.WARNING,
            call=what,
            error=str(error),
            attempt=f"{state.attempt_number}/{settings.attempts}",
            wait_s=round(state.upcoming_sleep, 2),
        )

    def give_up(state: tenacity.RetryCallState) -> None:
        # The last error, now saying how often it was tried (`AksfwError.attempts`).
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Retryable):
            error.attempts = state.attempt_number
        if error is not None:
            raise error

    attempts_done = tenacity.stop_after_attempt(settings.attempts)

    def stop(state: tenacity.RetryCallState) -> bool:
        if attempts_done(state):
            return True
        if bound is not None and bound.left() <= state.upcoming_sleep:
            bound.stopped = True
            return True
        return False

    return tenacity.Retrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(worth_retrying),
        before_sleep=before_sleep,
        retry_error_callback=give_up,
        sleep=pause,  # read at each call of retrying(), so tests can swap it
        reraise=True,
    )


def _retry_after(state: tenacity.RetryCallState) -> float | None:
    error = state.outcome.exception() if state.outcome else None
    return error.retry_after if isinstance(error, Retryable) else None
