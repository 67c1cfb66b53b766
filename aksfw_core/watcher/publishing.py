"""The watcher's side that tells the app: at most one publish per debounce window, and a
failed publish tried again after a backoff with its changes kept.

`Debouncer` is the pure rule (the caller passes the time); `DebouncedPublisher` runs it in
one thread, reading the time from and waiting with an injected `Clock`, so every wait can
be cut short by `stop` and tests move time instead of waiting for it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aksfw_core.errors import Retryable
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.watcher.changes import ServiceKey
from aksfw_core.watcher.timing import Clock, SystemClock, backoff_s

log = logging.getLogger(__name__)


@dataclass
class Debouncer:
    """At most one publish per window: the first change after a quiet period opens a
    window, the publish happens when it closes and covers every change inside it. Pure;
    the caller passes the time."""

    window_s: float
    first_change: float | None = None
    """When the oldest change not yet published arrived (None: nothing pending)."""
    not_before: float | None = None
    """No publish before this time (a failed publish's backoff), if set."""

    def changed(self, now: float) -> None:
        """Note a change."""
        if self.first_change is None:
            self.first_change = now

    def due_in(self, now: float) -> float | None:
        """Seconds until a publish is due (0: now), or None with nothing pending."""
        if self.first_change is None:
            return None
        due = self.first_change + self.window_s
        if self.not_before is not None:
            due = max(due, self.not_before)
        return max(0.0, due - now)

    def begin(self) -> float | None:
        """A publish starts: changes from now on open a new window. Returns what to pass
        to `failed` if the publish fails."""
        first, self.first_change, self.not_before = self.first_change, None, None
        return first

    def failed(self, first: float | None, retry_at: float | None = None) -> None:
        """The publish `begin` started failed: its changes are pending again, due at
        `retry_at` (None: now)."""
        if first is not None:
            self.first_change = min(first, self.first_change or first)
            self.not_before = retry_at


class DebouncedPublisher:
    """Calls `publish` after each window in which `changed` was called (see the module
    docstring). `run` is meant for one thread; `changed`, `idle` and `stop` for any."""

    def __init__(
        self,
        publish: Callable[[], None],
        *,
        window_s: float,
        limits: Limits | None = None,
        clock: Clock | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """`clock` times the windows and backoffs; `jitter` returns a fraction in [0, 1)."""
        self._publish = publish
        self._limits = limits or Limits()
        self._clock = clock or SystemClock()
        self._jitter = jitter
        self._lock = threading.Lock()
        self._debouncer = Debouncer(window_s)
        self._publishing = False
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.published = 0
        """Successful publishes so far."""

    @property
    def idle(self) -> bool:
        """Nothing pending and no publish under way."""
        with self._lock:
            return self._debouncer.first_change is None and not self._publishing

    def changed(self, why: str, key: ServiceKey | None = None) -> None:
        """Note a change that can change tags: a publish follows within the window."""
        log_event(log, "watch.change", logging.DEBUG, why=why, service="/".join(key or ()))
        with self._lock:
            self._debouncer.changed(self._clock.now())
        self._wake.set()

    def stop(self) -> None:
        """Make `run` return soon (a publish under way is finished first)."""
        self._stopped.set()
        self._wake.set()

    def run(self) -> None:
        """Publish after each window until `stop`; a failed publish is tried again after
        a backoff (at least its `Retry-After`) for as long as it fails transiently.

        Raises:
            AksfwError: `publish` failed for good (anything but `Retryable`): e.g. an
                `AuthError` when the topic refused the credential.
        """
        failures = 0
        while not self._stopped.is_set():
            first: float | None = None
            with self._lock:
                due = self._debouncer.due_in(self._clock.now())
                if due is None:
                    self._wake.clear()  # `changed` sets it again after this point
                elif due == 0:
                    first = self._debouncer.begin()
                    self._publishing = True
            if due is None:
                self._wake.wait()
            elif due > 0:
                self._clock.wait(due, self._stopped)
            elif self._attempt(first, failures):
                failures = 0
            else:
                failures += 1

    def _attempt(self, first: float | None, failures: int) -> bool:
        """Publish once; whether it worked (False: it failed transiently, and its changes
        are due again after a backoff)."""
        try:
            self._publish()
        except Retryable as error:
            wait = max(backoff_s(failures + 1, self._limits, self._jitter), error.retry_after or 0)
            log_event(log, "watch.publish_failed", logging.WARNING, error=str(error), wait_s=wait)
            with self._lock:
                self._debouncer.failed(first, self._clock.now() + wait)
                self._publishing = False
            return False
        except BaseException:
            with self._lock:
                self._publishing = False
            raise
        with self._lock:
            self.published += 1
            self._publishing = False
        log_event(log, "watch.published", cluster_changes_since_s=self._clock.now() - (first or 0))
        return True
