"""Coordination across every instance of the app, through blobs in the state container
(never a per-process memo: dozens of Flex Consumption instances run at once).

- A *claim* (`claims/<name>`) lets one caller per window do something: the first caller
  after the window has passed wins, every other caller in the window loses. One property
  read, and one conditional write for a possible winner; a process that has seen a window
  taken remembers until when, so a burst costs it one read per window, not one per event.
  A claim that ends further ahead than its window plus `max_skew_s` was written by a clock
  that runs ahead: it is not believed (`believable_until`), so one instance's wrong clock
  cannot stop every other's work for days.
- An *apply lock* (`locks/<sub>/<rg>/<cluster>/<target>`, a blob lease) lets one applier
  at a time work on one (cluster, target), so a burst of snapshots is applied one after
  the other instead of racing. The lease lasts `LEASE_S` and is renewed while the apply
  runs, so a worker that dies frees it within `LEASE_S`; the ETag condition on the state
  write stays the guarantee should a lease ever lapse.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobLeaseClient

from aksfw_core.errors import AksfwError, Retryable
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.pipeline.state import state_key
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.transport import azure_errors

log = logging.getLogger(__name__)

LEASE_S = 15
"""Seconds an apply lock's lease lasts unless renewed (Azure allows 15 to 60)."""

_POLL_S = 0.1


class Coordination:
    """Claims and apply locks in one storage account."""

    def __init__(
        self,
        account: StorageAccount,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_skew_s: float = Limits.max_version_skew_s,
    ) -> None:
        self._account = account
        self._max_skew_s = max_skew_s
        self._container = account.container
        self._clock = clock
        self._sleep = sleep
        self._taken_until: dict[str, float] = {}
        """Claims this process knows to be taken, and until when: the shared answer, kept
        only while it cannot change."""

    def claim(self, name: str, window_s: float, now: float | None = None) -> bool:
        """Whether this caller wins `name` for the next `window_s` seconds (from `now`, the
        coordination's clock unless given).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        now = self._clock() if now is None else now
        if now < self._taken_until.get(name, 0.0):
            return False
        blob = self._container.get_blob_client(f"claims/{name}")
        won = [False]

        def attempt() -> None:
            try:
                properties = blob.get_blob_properties()
            except ResourceNotFoundError:
                properties = None
            if properties is not None:
                stored = _seconds((properties.metadata or {}).get("until"))
                until = believable_until(stored, now, window_s + self._max_skew_s)
                if until > now:
                    self._taken_until[name] = until
                    return
            metadata = {"until": repr(now + window_s)}
            try:
                if properties is None:
                    blob.upload_blob(b"", overwrite=False, metadata=metadata)
                else:
                    blob.upload_blob(
                        b"",
                        overwrite=True,
                        metadata=metadata,
                        etag=properties.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                return  # another caller won this window a moment ago
            won[0] = True
            self._taken_until[name] = now + window_s

        self._account.recreating(f"claim {name}", attempt)
        return won[0]

    def take_until(self, name: str, until: float) -> None:
        """Take `name` until `until` (epoch seconds) whoever has it now: a later call
        extends an earlier one. `taken_until` reads it on every instance.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        blob = self._container.get_blob_client(f"claims/{name}")
        metadata = {"until": repr(until)}
        self._account.recreating(
            f"take {name}", lambda: blob.upload_blob(b"", overwrite=True, metadata=metadata)
        )
        self._taken_until[name] = until

    def taken_until(self, name: str, longest_s: float, now: float | None = None) -> float | None:
        """Until when `name` is taken or claimed, or None when it is free (from `now`); a
        time more than `longest_s` (plus the clock skew allowed) ahead is not believed.
        One property read, none while this process knows it is still taken.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        now = self._clock() if now is None else now
        known = self._taken_until.get(name, 0.0)
        if now < known:
            return known
        self._account.ensure()
        with azure_errors(f"read claims/{name}", "storage"):
            try:
                properties = self._container.get_blob_client(f"claims/{name}").get_blob_properties()
            except ResourceNotFoundError:
                return None
        stored = _seconds((properties.metadata or {}).get("until"))
        until = believable_until(stored, now, longest_s + self._max_skew_s)
        if until <= now:
            return None
        self._taken_until[name] = until
        return until

    @contextmanager
    def apply_lock(self, cluster_id: str, target: str, wait_s: float) -> Iterator[None]:
        """Hold the (cluster, target) apply lock for the block, waiting up to `wait_s`
        seconds for another applier to release it.

        Raises:
            Retryable: it stayed held (the message returns to the queue), or Storage failed.
            AuthError, NonRetryable: Storage refused.
        """
        name = f"locks/{state_key(cluster_id, target)}"
        blob = self._container.get_blob_client(name)

        def create() -> None:
            with suppress(ResourceExistsError):
                blob.upload_blob(b"", overwrite=False)

        lease = BlobLeaseClient(blob)
        deadline = time.monotonic() + wait_s
        waited = False
        while True:
            with azure_errors(f"lease {name}", "storage"):
                try:
                    lease.acquire(lease_duration=LEASE_S)
                    break
                except ResourceNotFoundError:  # the first apply of this target
                    self._account.recreating(f"create {name}", create)
                    continue
                except HttpResponseError as error:
                    if error.status_code != 409:  # 409: another applier holds it
                        raise
            if time.monotonic() >= deadline:
                raise Retryable(f"{name} stayed locked for {wait_s:g} s (another applier)")
            waited = True
            self._sleep(_POLL_S)
        if waited:
            log_event(log, "apply.lock_waited", cluster=cluster_id, target=target)
        done = threading.Event()
        renewer = threading.Thread(target=_renew, args=(lease, done), daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join(timeout=5)
            try:
                with azure_errors(f"release {name}", "storage"):
                    lease.release()
            except AksfwError as error:  # it expires by itself within LEASE_S
                log_event(log, "apply.lock_not_released", logging.WARNING, error=str(error))


def _renew(lease: BlobLeaseClient, done: threading.Event) -> None:
    """Keep a lease while its holder works; a failed renewal lets it lapse (ETag guards)."""
    while not done.wait(LEASE_S / 3):
        try:
            lease.renew()
        except AzureError as error:
            log_event(log, "apply.lock_lapsed", logging.WARNING, error=type(error).__name__)
            return


def believable_until(until: float, now: float, longest_s: float) -> float:
    """`until`, or 0 (free) when it lies more than `longest_s` after `now`: a clock that ran
    ahead wrote it."""
    return until if until - now <= longest_s else 0.0


def _seconds(text: str | None) -> float:
    try:
        return float(text) if text is not None else 0.0
    except ValueError:
        return 0.0
