"""What the entries a resync reads from outside the Service list (node subnets, egress
addresses) share: when a read fails, the entries of that kind last applied for the cluster
are kept, so nothing is unregistered because a read failed (DESIGN section 6).

They are taken from the newest applied state of the cluster (one state read, only after a
failed read, and at most once per resync): all targets get the same ones, so the
snapshot's fingerprint stays one per cluster, and they are the last a successful read
found. A read that left something unknown (a node pool without an acceptable prefix, an
outbound resource whose address is refused) keeps them too, beside what it did find
(`read_or_kept`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.errors import AksfwError
from aksfw_core.logs import log_event
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.rules.egress import merged
from aksfw_core.rules.model import IpTags

Pick = Callable[[str, str, IpTags], dict[str, frozenset[str]]]
"""The entries of one kind in an applied state's tags (the third argument, saved under the
tag name of the second), under the cluster's current tag name (the first)."""


class LastApplied:
    """The newest applied state of one cluster, read on first use only."""

    def __init__(self, store: StateStore, cluster: MonitoredCluster) -> None:
        self._store = store
        self._cluster = cluster
        self._read = False
        self._state: AppliedState | None = None

    def entries(self, pick: Pick) -> dict[str, frozenset[str]]:
        """What `pick` finds in the newest applied state (none without one).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        if not self._read:
            listed = self._store.summaries(self._cluster.id)
            if listed:
                newest = max(listed, key=lambda item: item.summary.version).summary
                self._state, _ = self._store.load_applied(self._cluster.id, newest.target)
            self._read = True
        state = self._state
        return {} if state is None else pick(self._cluster.tag_name, state.tag_name, state.tags)


def log_read_failed(
    log: logging.Logger, event: str, cluster: MonitoredCluster, error: AksfwError, kept: IpTags
) -> None:
    """The warning line of a failed read and what it keeps (`<event>` is
    `node_subnets.read_failed`, `egress.read_failed` and the like)."""
    log_event(
        log,
        event,
        logging.WARNING,
        cluster=cluster.id,
        error=f"{type(error).__name__}: {error}",
        status=error.status,
        kept=sorted(kept),
    )


Read = Callable[[], tuple[IpTags, tuple[str, ...]]]
"""One read: the entries found, and what it left unknown (named for the log)."""


@dataclass(frozen=True)
class EntryKind:
    """One kind of entries read outside the Service list, as its logs name it."""

    log: logging.Logger
    event: str
    """The log events' prefix: `<event>.read_failed`, `<event>.<unknown_event>`."""
    pick: Pick
    unknown_event: str
    unknown_field: str
    """The log field that lists what a read left unknown (`pools`, `resources`)."""
    unknown_text: Callable[[MonitoredCluster, tuple[str, ...], IpTags], str]
    """The log message for what a read left unknown, and the entries it keeps."""


def read_or_kept(
    kind: EntryKind, cluster: MonitoredCluster, last: LastApplied, read: Read
) -> IpTags:
    """The entries `read` finds; when it fails, those of `kind` last applied; when it
    leaves something unknown, both. Each fallback is logged as a warning.

    Raises:
        AuthError, Retryable, NonRetryable: the applied state was needed and could not be
            read (nothing is queued, so nothing is removed).
    """
    try:
        wanted, unknown = read()
    except AksfwError as error:
        kept = last.entries(kind.pick)
        log_read_failed(kind.log, f"{kind.event}.read_failed", cluster, error, kept)
        return kept
    if not unknown:
        return wanted
    kept = last.entries(kind.pick)
    log_event(
        kind.log,
        f"{kind.event}.{kind.unknown_event}",
        logging.WARNING,
        cluster=cluster.id,
        **{kind.unknown_field: list(unknown)},
        kept=sorted(kept),
        message=kind.unknown_text(cluster, unknown, kept),
    )
    return merged(kept, wanted)
