"""One read of a target's whole registered-IP table for every cluster's comparison with it.

A cluster's apply compares with what its target really holds in the hourly audit, on a
first apply, after a failed or refused write, after the target forgot (the canary) and to
settle a race; that needs the target's whole table, and a firewall with 200 clusters on it
would be read 200 times where DESIGN section 10 allows once per audit cycle. So the first
applier that needs a target's table takes the target's read lock
(`Coordination.table_read_lock`, a lease renewed while it reads), reads the table once
(`PanoramaClient.registered`: the bounded, paged read), keeps aksfw's part of it (every
aksfw cluster's tags, by the cluster's tag name: `rules.plan.by_owner`; no other owner's)
and stores it as `tables/<target>.json` with when the read began (`pipeline.state`). Every
other applier that needs it meanwhile waits for it, polling the stored table with backoff
for at most `limits.shared_table_wait_s` (then its message goes back to the queue), and
uses it. Each cluster keeps only its own tags of it (`rules.tags.ownership`): what a
cluster may touch does not change. A reader that dies lets its lease lapse within
`coordination.LEASE_S`; the next applier that needs the table reads it then.

Which stored table serves a comparison is `decisions.table_since`'s: one read after the
cluster's last write on the target (so it shows all of the cluster's own tags), and since
the comparison's audit or repair began, else at most `limits.shared_table_max_age_s` old.
A target found to have forgotten is `invalidate`d first: no table read before serves its
repair, and a read in flight cannot store what it read (the store is conditional on the
blob being as the reader found it before it began).

aksfw's part larger than `limits.shared_table_max_bytes` is not stored: a record without a
body says so, and each apply that compares with that target reads it itself.

A process keeps the tables it parsed last (by target and ETag, up to `CACHED_PAIRS` IP-tag
pairs in all: 30 firewalls' of the target installation), so the 200 clusters of a firewall
cost one download per process, then one property read each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from typing import NamedTuple

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from aksfw_core.errors import NonRetryable, Retryable
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.pipeline.coordination import Coordination
from aksfw_core.pipeline.decisions import table_serves, table_since
from aksfw_core.pipeline.state import TableRecord, table_blob
from aksfw_core.pipeline.state_codec import (
    from_metadata,
    table_body,
    table_from_body,
    table_json,
    to_metadata,
)
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.rules.model import IpTags
from aksfw_core.rules.plan import by_owner
from aksfw_core.transport import azure_errors

log = logging.getLogger(__name__)

CACHED_PAIRS = 500_000
"""IP-tag pairs of parsed tables a process keeps at most (the last ones it used, each by
target and ETag; about 100 MB), and at least the last table whatever its size."""

_FIRST_POLL_S = 0.05
_LONGEST_POLL_S = 1.0


class Table(NamedTuple):
    """A target's table as one read found it: aksfw's tags by the owning cluster's name."""

    record: TableRecord
    owners: Mapping[str, IpTags]

    def of(self, names: Iterable[str]) -> IpTags:
        """The tags the clusters of these tag names may own (a cluster's own tags, or its
        old and new names' after an alias changed), as a table of their own."""
        found: dict[str, frozenset[str]] = {}
        for name in names:
            for ip, tags in self.owners.get(name, {}).items():
                found[ip] = found.get(ip, frozenset()) | tags
        return found


class SharedTables:
    """The stored tables of every target, and the one read of each (the module's
    docstring)."""

    def __init__(
        self,
        account: StorageAccount,
        coordination: Coordination,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        limits: Limits | None = None,
    ) -> None:
        self._account = account
        self._container = account.container
        self._coordination = coordination
        self._clock = clock
        self._sleep = sleep
        self._limits = limits or Limits()
        self._parsed: OrderedDict[str, tuple[str, Table]] = OrderedDict()
        self._parsed_lock = threading.Lock()

    def table(
        self,
        target: str,
        read: Callable[[], IpTags],
        *,
        compare_since: float | None,
        wrote_at: float | None,
    ) -> Table:
        """`target`'s table for one cluster's comparison: a stored one that serves it
        (`decisions.table_since` of `compare_since` and `wrote_at`, the cluster's last write
        there), else the one another applier is reading now, else read here with `read`
        and stored.

        Raises:
            Retryable: another applier kept reading it for `limits.shared_table_wait_s`;
                Storage failed; or as `read`.
            AuthError, NonRetryable: as `read`, or Storage refused.
        """
        limits = self._limits
        since = table_since(
            compare_since=compare_since, wrote_at=wrote_at, now=self._clock(), limits=limits
        )
        started = time.monotonic()
        deadline = started + limits.shared_table_wait_s
        pause = _FIRST_POLL_S
        waited = False
        while True:
            record, etag = self._record(target)
            if table_serves(record, since) and record is not None and etag is not None:
                if not record.stored:  # too large to share: each reads it itself
                    return self._read(target, read, store=None)
                found = self._stored(target, record, etag)
                if found is not None:
                    if waited:
                        waited_ms = round((time.monotonic() - started) * 1000)
                        log_event(log, "table.waited", target=target, waited_ms=waited_ms)
                    return found
                continue  # replaced since its properties were read: look again
            with self._coordination.table_read_lock(target) as reading:
                if reading:
                    return self._read_for_everyone(target, read, since)
            if time.monotonic() >= deadline:
                raise Retryable(
                    f"the table of {target} was still being read by another applier after "
                    f"{limits.shared_table_wait_s:g} s (limits.sharedTableWaitSeconds)"
                )
            waited = True
            self._sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _LONGEST_POLL_S)

    def invalidate(self, target: str) -> None:
        """Forget `target`'s stored table (it lost its registrations): no table read before
        serves anyone, and a read in flight cannot store its result.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = table_blob(target)
        metadata = {"invalidatedat": repr(self._clock())}
        self._account.recreating(
            f"write {name}",
            lambda: self._container.upload_blob(name, b"", overwrite=True, metadata=metadata),
        )
        with self._parsed_lock:
            self._parsed.pop(target.lower(), None)

    # ------------------------------------------------------------------ steps

    def _read_for_everyone(self, target: str, read: Callable[[], IpTags], since: float) -> Table:
        """Holding the read lock: the stored table if one came meanwhile, else read and
        stored, If-Match the blob as it was before the read began."""
        record, etag = self._record(target)
        if table_serves(record, since) and record is not None and record.stored and etag:
            found = self._stored(target, record, etag)
            if found is not None:
                return found
        return self._read(target, read, store=etag or "")

    def _read(self, target: str, read: Callable[[], IpTags], *, store: str | None) -> Table:
        """Read the table with `read`; store it unless `store` is None (else the ETag the
        blob had before the read began, "" for none)."""
        began = self._clock()
        started = time.monotonic()
        registered = read()
        owners = by_owner(registered)
        pairs = sum(len(tags) for ips in owners.values() for tags in ips.values())
        text = table_json(owners)
        fits = len(text) <= self._limits.shared_table_max_bytes
        record = TableRecord(target, began, len(registered), pairs, stored=fits)
        table = Table(record, owners)
        stored = None
        if store is not None:
            stored = self._store(target, record, table_body(text) if fits else b"", store)
        if stored is not None and fits:
            self._keep(target, stored, table)
        log_event(
            log,
            "table.read",
            logging.INFO if fits else logging.WARNING,
            target=target,
            ips=record.ips,
            pairs=pairs,
            json_bytes=len(text),
            shared=stored is not None and fits,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return table

    # ------------------------------------------------------------------ blobs

    def _record(self, target: str) -> tuple[TableRecord | None, str | None]:
        """The stored table's record (None: none, or invalidated) and the blob's ETag (None:
        no blob).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = table_blob(target)
        self._account.ensure()
        with azure_errors(f"read {name} properties", "storage"):
            try:
                properties = self._container.get_blob_client(name).get_blob_properties()
            except ResourceNotFoundError:
                return None, None
        return from_metadata(TableRecord, properties.metadata), str(properties.etag)

    def _stored(self, target: str, record: TableRecord, etag: str) -> Table | None:
        """The table a stored blob of ETag `etag` holds: parsed by this process before, or
        downloaded now; None when the blob changed since `etag`.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        key = target.lower()
        with self._parsed_lock:
            known = self._parsed.get(key)
        if known is not None and known[0] == etag:
            return known[1]
        name = table_blob(target)
        with azure_errors(f"read {name}", "storage"):
            try:
                data = self._container.download_blob(
                    name, etag=etag, match_condition=MatchConditions.IfNotModified
                ).readall()
            except (ResourceModifiedError, ResourceNotFoundError):
                return None
        try:
            owners = table_from_body(data, self._limits.shared_table_max_bytes)
        except NonRetryable as error:  # read it again rather than trust it
            log_event(log, "table.unreadable", logging.WARNING, target=target, error=str(error))
            self._forget_unreadable(target, etag)
            return None
        table = Table(record, owners)
        self._keep(target, etag, table)
        return table

    def _keep(self, target: str, etag: str, table: Table) -> None:
        """Remember a parsed table of this ETag (within `CACHED_PAIRS`)."""
        key = target.lower()
        with self._parsed_lock:
            self._parsed[key] = (etag, table)
            self._parsed.move_to_end(key)
            kept = sum(table.record.pairs for _, table in self._parsed.values())
            while len(self._parsed) > 1 and kept > CACHED_PAIRS:
                _, (_, dropped) = self._parsed.popitem(last=False)
                kept -= dropped.record.pairs

    def _forget_unreadable(self, target: str, etag: str) -> None:
        """Drop a stored table that cannot be read, If-Match `etag` (changed or gone: the
        next look decides); the next look then finds none and reads the target."""
        name = table_blob(target)
        with (
            azure_errors(f"delete {name}", "storage"),
            suppress(ResourceModifiedError, ResourceNotFoundError),
        ):
            self._container.delete_blob(
                name, etag=etag, match_condition=MatchConditions.IfNotModified
            )

    def _store(self, target: str, record: TableRecord, body: bytes, etag: str) -> str | None:
        """Write the table If-Match `etag` ("": only if there is no blob): its new ETag, or
        None when the blob changed while the target was read (it forgot: `invalidate`).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = table_blob(target)
        metadata = to_metadata(record)
        blob = self._container.get_blob_client(name)
        stored: list[str | None] = [None]

        def upload() -> None:
            try:
                if not etag:
                    answer = blob.upload_blob(body, overwrite=False, metadata=metadata)
                else:
                    answer = blob.upload_blob(
                        body,
                        overwrite=True,
                        metadata=metadata,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                return
            stored[0] = str(answer["etag"])

        self._account.recreating(f"write {name}", upload)
        if stored[0] is None:
            log_event(
                log,
                "table.not_stored",
                logging.WARNING,
                target=target,
                reason="the stored table changed while it was read (the target forgot?)",
            )
        return stored[0]
