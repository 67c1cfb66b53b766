"""`ServiceWatcher`: the watch stream, change detection and the debounced publisher joined
into the running `aksfw watch` (two threads: one reads the watch, one publishes)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from aksfw_core.errors import AksfwError
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_core.watcher.changes import ServiceViews
from aksfw_core.watcher.publishing import DebouncedPublisher
from aksfw_core.watcher.stream import Listed, ServiceStream
from aksfw_core.watcher.timing import Clock, SystemClock


class ServiceWatcher:
    """Watches every Service of one cluster and calls `publish` after each window in
    which something that can change its tags changed (`aksfw_core.watcher`).

    `run` blocks until `stop` is called or a permanent failure; it is meant for one
    thread, `stop` for any other.
    """

    def __init__(
        self,
        api_client: Any,
        publish: Callable[[], None],
        *,
        limits: Limits | None = None,
        debounce_s: float = 2.0,
        list_retry: RetrySettings | None = None,
        clock: Clock | None = None,
        reconnect_clock: Clock | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """`clock` times the debounce windows and publish retries, `reconnect_clock` the
        watch's reconnect waits (default: `clock`; tests reconnect at once while they hold
        a window open); `jitter` returns a fraction in [0, 1)."""
        self._limits = limits or Limits()
        clock = clock or SystemClock()
        self._stream = ServiceStream(
            api_client,
            limits=self._limits,
            list_retry=list_retry,
            clock=reconnect_clock or clock,
            jitter=jitter,
        )
        self._publisher = DebouncedPublisher(
            publish, window_s=debounce_s, limits=self._limits, clock=clock, jitter=jitter
        )
        self._views = ServiceViews()
        self._stopped = threading.Event()
        self._failure: BaseException | None = None

    @property
    def resource_version(self) -> str | None:
        """The newest resource version seen, every change before it noted (None before
        the first list)."""
        return self._stream.resource_version

    @property
    def published(self) -> int:
        """Successful publishes so far."""
        return self._publisher.published

    @property
    def idle(self) -> bool:
        """Every change noted so far is published, and no publish is under way."""
        return self._publisher.idle

    def stop(self) -> None:
        """Make `run` return soon: the open watch is cut, waits end."""
        self._stopped.set()
        self._publisher.stop()
        self._stream.stop()

    def run(self) -> None:
        """Watch and publish until `stop`.

        Raises:
            AuthError: the API server refused the credential or the watch (401/403), or
                the publisher refused its credential.
            NonRetryable: another permanent failure (TLS verification, a refused request).
        """
        watching = threading.Thread(target=self._watch, name="aksfw-watch", daemon=True)
        watching.start()
        try:
            self._publisher.run()
        except AksfwError as error:
            self._fail(error)
        finally:
            self.stop()
            watching.join(timeout=self._limits.kube_deadline_s)
            self._stream.close()
        if self._failure is not None:
            raise self._failure

    def _watch(self) -> None:
        try:
            for item in self._stream.items():
                if isinstance(item, Listed):
                    change = self._views.relist(item.items)
                else:
                    change = self._views.apply(item.kind, item.obj)
                if change is not None:
                    self._publisher.changed(change.why, change.key)
        except BaseException as error:  # run() raises it in its own thread
            if not self._stopped.is_set():
                self._fail(error)
        finally:
            self.stop()

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        self.stop()
