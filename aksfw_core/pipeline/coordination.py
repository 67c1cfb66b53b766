"""Coordination across every instance of the app, through blobs in the state container
(never a per-process memo: dozens of Flex Consumption instances run at once).

- A *claim* (`claims/<name>`) lets one caller per window do something: the first caller
  after the window has passed wins, every other caller in the window loses. One property
  read, and one conditional write for a possible winner; a process that has seen a window
  taken remembers until when, so a burst costs it one read per window, not one per event.
  A claim that ends further ahead than its window plus `max_skew_s` was written by a clock
  that runs ahead: it is not believed (`believable_until`), so one instance's wrong clock
  cannot stop every other's work for days.
- A claim *taken until* a time (`take_until`, read by `taken_until`) holds for everyone
  until then, unless it is *released* (`release`). A process trusts what it read for at
  most `TRUST_S`, so a release reaches every instance within that; the one that releases
  forgets at once.
- An *apply lock* (`locks/<sub>/<rg>/<cluster>/<target>`, a blob lease) lets one applier
  at a time work on one (cluster, target), so a burst of snapshots is applied one after
  the other instead of racing. The lease lasts `LEASE_S` and is renewed while the apply
  runs, so a worker that dies frees it within `LEASE_S`; the ETag condition on the state
  write stays the guarantee should a lease ever lapse.
- A *table read lock* (`locks/tables/<target>`, a blob lease of the same kind) lets one
  applier at a time read a target's whole table for everyone (`pipeline.shared_tables`);
  the others do not wait for the lock but for the table it brings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass

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
from aksfw_core.pipeline.storage import StorageAccount, write_marker
from aksfw_core.transport import azure_errors

log = logging.getLogger(__name__)

TRUST_S = 60.0
"""Seconds a process trusts a taken claim it has read (`taken_until`) before it reads it
again: a release (`release`) reaches every instance within this."""

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
        self._trusted_until: dict[str, float] = {}
        """Until when `taken_until` answers from `_taken_until` without reading again (at
        most `TRUST_S` after it read or wrote the claim: a release can end it sooner)."""

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
            if not write_marker(blob, properties, {"until": repr(now + window_s)}):
                return  # another caller won this window a moment ago
            won[0] = True
            self._taken_until[name] = now + window_s

        self._account.recreating(f"claim {name}", attempt)
        return won[0]

    def take_until(self, name: str, until: float, note: Mapping[str, str] | None = None) -> None:
        """Take `name` until `until` (epoch seconds) whoever has it now: a later call
        extends an earlier one. `taken_until` reads it on every instance; `note` (ASCII
        text) is kept with it for `taken` to show.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        blob = self._container.get_blob_client(f"claims/{name}")
        metadata = {**(note or {}), "until": repr(until)}
        self._account.recreating(
            f"take {name}", lambda: blob.upload_blob(b"", overwrite=True, metadata=metadata)
        )
        self._remember(name, until, self._clock())

    def taken_until(self, name: str, longest_s: float, now: float | None = None) -> float | None:
        """Until when `name` is taken or claimed, or None when it is free (from `now`); a
        time more than `longest_s` (plus the clock skew allowed) ahead is not believed.
        One property read, none while this process trusts what it read (at most `TRUST_S`).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        now = self._clock() if now is None else now
        known = self._taken_until.get(name, 0.0)
        if now < known and now < self._trusted_until.get(name, 0.0):
            return known
        taken = self.taken(name, longest_s, now)
        if taken is None:
            self._forget(name)
            return None
        self._remember(name, taken.until, now)
        return taken.until

    def taken(self, name: str, longest_s: float, now: float | None = None) -> Taken | None:
        """Until when `name` is taken, with the note it was taken with, read now (no
        memo); None when it is free. `longest_s` as in `taken_until`.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        now = self._clock() if now is None else now
        self._account.ensure()
        with azure_errors(f"read claims/{name}", "storage"):
            try:
                properties = self._container.get_blob_client(f"claims/{name}").get_blob_properties()
            except ResourceNotFoundError:
                return None
        metadata = dict(properties.metadata or {})
        stored = _seconds(metadata.pop("until", None))
        until = believable_until(stored, now, longest_s + self._max_skew_s)
        if until <= now:
            return None
        return Taken(until, metadata)

    def release(
        self, name: str, longest_s: float, note: Mapping[str, str] | None = None
    ) -> Taken | None:
        """End a claim taken with `take_until` now, on every instance (within `TRUST_S`;
        at once in this process): returns what was released, or None when it was free.
        `note` is kept with the released claim (who released it, when). A `take_until`
        that comes in between wins: the release reads again and ends that one.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        blob = self._container.get_blob_client(f"claims/{name}")
        released: list[Taken | None] = [None]

        def attempt() -> None:
            for _ in range(5):
                now = self._clock()
                try:
                    properties = blob.get_blob_properties()
                except ResourceNotFoundError:
                    return
                metadata = dict(properties.metadata or {})
                stored = _seconds(metadata.pop("until", None))
                until = believable_until(stored, now, longest_s + self._max_skew_s)
                if until <= now:
                    return
                try:
                    blob.upload_blob(
                        b"",
                        overwrite=True,
                        metadata={**metadata, **(note or {}), "until": repr(now)},
                        etag=properties.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                except ResourceModifiedError:
                    continue  # taken again a moment ago: release that
                released[0] = Taken(until, metadata)
                return
            raise Retryable(f"claims/{name} kept changing: release it again")

        try:
            self._account.recreating(f"release {name}", attempt)
        finally:
            self._forget(name)
        return released[0]

    def _remember(self, name: str, until: float, now: float) -> None:
        self._taken_until[name] = until
        self._trusted_until[name] = min(until, now + TRUST_S)

    def _forget(self, name: str) -> None:
        self._taken_until.pop(name, None)
        self._trusted_until.pop(name, None)

    @contextmanager
    def apply_lock(self, cluster_id: str, target: str, wait_s: float) -> Iterator[None]:
        """Hold the (cluster, target) apply lock for the block, waiting up to `wait_s`
        seconds for another applier to release it.

        Raises:
            Retryable: it stayed held (the message returns to the queue), or Storage failed.
            AuthError, NonRetryable: Storage refused.
        """
        name = f"locks/{state_key(cluster_id, target)}"
        lease = BlobLeaseClient(self._container.get_blob_client(name))
        deadline = time.monotonic() + wait_s
        waited = False
        while not self._take_lease(name, lease):  # another applier holds it
            if time.monotonic() >= deadline:
                raise Retryable(f"{name} stayed locked for {wait_s:g} s (another applier)")
            waited = True
            self._sleep(_POLL_S)
        if waited:
            log_event(log, "apply.lock_waited", cluster=cluster_id, target=target)
        with _holding(lease, name):
            yield

    @contextmanager
    def table_read_lock(self, target: str) -> Iterator[bool]:
        """Hold the lock on reading `target`'s whole table for the block if nobody holds it:
        yields whether this caller holds it (False: another applier is reading; nothing is
        held). A lease, renewed while the block runs, so a reader that dies frees it within
        `LEASE_S` (`pipeline.shared_tables`).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = f"locks/tables/{target.lower()}"
        lease = BlobLeaseClient(self._container.get_blob_client(name))
        if not self._take_lease(name, lease):
            yield False
            return
        with _holding(lease, name):
            yield True

    def _take_lease(self, name: str, lease: BlobLeaseClient) -> bool:
        """One try at the lease of blob `name` (created if missing): False when another
        caller holds it.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        blob = self._container.get_blob_client(name)

        def create() -> None:
            with suppress(ResourceExistsError):
                blob.upload_blob(b"", overwrite=False)

        while True:
            with azure_errors(f"lease {name}", "storage"):
                try:
                    lease.acquire(lease_duration=LEASE_S)
                    return True
                except ResourceNotFoundError:  # its first use
                    self._account.recreating(f"create {name}", create)
                    continue
                except HttpResponseError as error:
                    if error.status_code != 409:  # 409: another caller holds it
                        raise
                    return False


@contextmanager
def _holding(lease: BlobLeaseClient, name: str) -> Iterator[None]:
    """Keep a lease taken for the block (renewed, `_renew`), then release it."""
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


@dataclass(frozen=True)
class Taken:
    """A claim taken until a time, and the note it was taken (or released) with."""

    until: float
    note: dict[str, str]


def believable_until(until: float, now: float, longest_s: float) -> float:
    """`until`, or 0 (free) when it lies more than `longest_s` after `now`: a clock that ran
    ahead wrote it."""
    return until if until - now <= longest_s else 0.0


def _seconds(text: str | None) -> float:
    try:
        return float(text) if text is not None else 0.0
    except ValueError:
        return 0.0
