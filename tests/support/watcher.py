"""The Service watcher in a thread against the fake Kubernetes API, on fake clocks: the
publisher's that a test moves, the reconnects' that moves by itself when waited on; and
waiting until the watcher has caught up. For tests/kube/test_watch.py and the watcher's
end-to-end test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aksfw_core.kube import kube_api_client
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_core.watcher import ServiceWatcher
from aksfw_local.fakes.kube_api import FakeKubeApi

WINDOW_S = 0.25  # a binary fraction: sums of it on the fake clock are exact
LIMITS = Limits(kube_watch_timeout_s=5, kube_read_timeout_s=5, kube_deadline_s=10)


class FakeClock:
    """A `Clock` whose time moves only when told: by `advance`, or (`auto`) by each wait,
    which then returns at once. A wait that is not `auto` blocks until the time reaches
    its end or its event is set."""

    def __init__(self, auto: bool = False, on_wait: Callable[[float], object] | None = None):
        self.auto, self._on_wait = auto, on_wait
        self._now = 1000.0
        self._moved = threading.Condition()
        self.waits: list[float] = []
        """The seconds of every wait, in order."""
        self.waiting = 0
        """Waits under way now."""

    def now(self) -> float:
        with self._moved:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._moved:
            self._now += seconds
            self._moved.notify_all()

    def wait(self, seconds: float, until: threading.Event) -> bool:
        with self._moved:
            self.waits.append(seconds)
            ends = self._now + seconds
        if self._on_wait is not None:
            self._on_wait(seconds)
        if self.auto:
            self.advance(max(0.0, ends - self.now()))
            return until.is_set()
        with self._moved:
            self.waiting += 1
            while self._now < ends and not until.is_set():
                self._moved.wait(0.01)  # `until` cannot notify this condition: look again
            self.waiting -= 1
        return until.is_set()


class Run:
    """A watcher running in a thread, with what it published (the publisher clock's time of
    each publish) and the clocks it runs on."""

    def __init__(self, watcher: ServiceWatcher, published: list[float], clock: FakeClock,
                 reconnects: FakeClock):  # fmt: skip
        self.watcher, self.published, self.clock = watcher, published, clock
        self.waits = reconnects.waits
        """The watch's reconnect waits."""
        self.error: BaseException | None = None


@contextmanager
def watching(
    api: FakeKubeApi,
    tmp_path: Any,
    on_reconnect_wait: Callable[[float], object] | None = None,
    publish: Callable[[], None] | None = None,
) -> Iterator[Run]:
    published: list[float] = []
    clock = FakeClock()
    reconnects = FakeClock(auto=True, on_wait=on_reconnect_wait)
    client = kube_api_client(str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    watcher = ServiceWatcher(
        client,
        publish or (lambda: published.append(clock.now())),
        limits=LIMITS,
        debounce_s=WINDOW_S,
        list_retry=RetrySettings(attempts=1),
        clock=clock,
        reconnect_clock=reconnects,
    )
    run = Run(watcher, published, clock, reconnects)

    def target() -> None:
        try:
            watcher.run()
        except BaseException as error:
            run.error = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield run
    finally:
        watcher.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the watcher did not stop"


def wait_until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    ends = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < ends, "timed out waiting"
        time.sleep(0.005)


def caught_up(run: Run, api: FakeKubeApi) -> None:
    """Wait until the watcher has seen every change, let a window pass on its clock, and
    wait until it has published all it had to."""
    wait_until(lambda: run.watcher.resource_version == api.resource_version)
    run.clock.advance(WINDOW_S)
    wait_until(lambda: run.watcher.idle)
