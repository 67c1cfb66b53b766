"""Time for `aksfw watch`: the clock its debounce windows and backoffs are measured and
waited with, and its backoff between failures.

Every wait of the watcher goes through a `Clock` and can be cut short by the watcher's
stop, so a pod stops at once on SIGTERM and tests run the watcher on a fake clock instead
of waiting in real time.

The backoff is not `aksfw_core.retry`'s policy, on purpose: that one bounds the retries
of one call (a few attempts, then the error is raised and the queue carries the outage).
The watcher is a loop meant to outlive outages (an API server upgrade, an Event Grid
incident): it never gives up on a transient failure, starts counting again after each
success, waits a long `Retry-After` out instead of raising, and must wake up when
stopped. Only a permanent failure ends it (and the pod, which Kubernetes restarts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from aksfw_core.limits import Limits


class Clock(Protocol):
    """What the watcher reads the time from and waits with."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def wait(self, seconds: float, until: threading.Event) -> bool:
        """Wait `seconds` by this clock, or less if `until` is set first; whether it is."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, and waits on the event itself."""

    def now(self) -> float:
        """Seconds since an arbitrary start (`time.monotonic`)."""
        return time.monotonic()

    def wait(self, seconds: float, until: threading.Event) -> bool:
        """Wait up to `seconds`, returning early (True) once `until` is set."""
        return until.wait(max(0.0, seconds))


def backoff_s(failures: int, limits: Limits, jitter: Callable[[], float]) -> float:
    """Seconds to wait after `failures` failures in a row: exponential from
    `watch_backoff_initial_s`, capped at `watch_backoff_max_s`, between half and all of
    that (jitter, so many watchers do not come back in step). `jitter` returns a
    fraction in [0, 1)."""
    exponent = min(max(failures - 1, 0), 32)
    ceiling = min(limits.watch_backoff_max_s, limits.watch_backoff_initial_s * 2**exponent)
    return float(ceiling / 2 + ceiling / 2 * jitter())
