"""The one retry policy for a bounded outside call: transient faults only, exponential
backoff with jitter, `Retry-After` honoured as a minimum wait, a bounded number of attempts.

Long outages are not waited out here: the queue carries them (DESIGN section 6). The only
loop that waits outages out is `aksfw watch`'s reconnect and publish loop
(`aksfw_core.watcher.timing`), which runs in its own pod with no queue behind it.
"""

from __future__ import annotations

import logging
import time
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


def pause(seconds: float) -> None:
    """Wait between attempts. Tests replace this one function to skip or record waits."""
    time.sleep(seconds)


def retrying(settings: RetrySettings, what: str) -> tenacity.Retrying:
    """A tenacity controller that retries `Retryable` errors of the call `what` describes.

    The last error is re-raised once attempts run out, its `attempts` set to their number.
    """
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

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(settings.attempts),
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
