"""The checks a snapshot passes before anything is written: a snapshot is data, not
authority. Its tags must be its cluster's own; its cluster, tag name and target must be the
ones the inventory, the configuration and aksfw's own applied state give; its version may
not come from a clock too far ahead, and a saved state that far ahead is not trusted for
ordering, so no version can lock a cluster. A snapshot that fails is refused as malformed
(the queue poisons it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.errors import AksfwError, InputError
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.decisions import seconds_ahead
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.rules.messages import (
    PANORAMA_TARGET,
    MalformedMessage,
    Snapshot,
    is_firewall_serial,
)
from aksfw_core.rules.tags import check_cluster_name, entry_problem, ownership, registrable

log = logging.getLogger(__name__)

ClusterLookup = Callable[[str], MonitoredCluster | None]
"""The monitored cluster with a resource ID, or None: in the app,
`discovery.inventory_knowing(id).find(id)`, so an unknown cluster costs at most one early
inventory refresh."""


class UnknownSnapshotCluster(MalformedMessage):
    """A snapshot of a cluster that is not monitored and has no applied state there."""


class SnapshotGuard:
    """Checks snapshots against the inventory, the configured targets and the clock."""

    def __init__(
        self,
        clusters: ClusterLookup,
        targets: TargetResolver,
        *,
        max_version_skew_s: float = Limits.max_version_skew_s,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clusters = clusters
        self._targets = targets
        self._max_skew_s = max_version_skew_s
        self._clock = clock

    def check(self, snapshot: Snapshot, state: AppliedState | None) -> None:
        """Everything a snapshot must pass to be applied over `state` (aksfw's record for
        its cluster and target, or None).

        Raises:
            MalformedMessage: it fails a check (`UnknownSnapshotCluster`: its cluster is not
                monitored and has no applied state on that target).
            Retryable, AuthError, NonRetryable: the inventory or Panorama's device-group
                list could not be read.
        """
        if not snapshot.tombstone:
            self.authorise(snapshot, state)
        elif state is not None:
            check_tombstone(snapshot, state)

    def check_version(self, snapshot: Snapshot) -> None:
        """Refuse a version from a clock too far ahead: applied, it would make every
        snapshot of that cluster and target look older until the clock caught up.

        Raises:
            MalformedMessage: the version is more than the allowed skew ahead.
        """
        ahead_s = seconds_ahead(snapshot.version, self._clock())
        if ahead_s > self._max_skew_s:
            raise MalformedMessage(
                f"snapshot: version {snapshot.version} of cluster {snapshot.cluster_id} on "
                f"target {snapshot.target!r} is {ahead_s:.0f} s ahead of this clock "
                f"(at most {self._max_skew_s:.0f} s allowed)"
            )

    def trusted(self, state: AppliedState) -> bool:
        """Whether the saved version may order snapshots: one saved too far ahead (by an
        older release, or under a clock jump) would skip every snapshot as older."""
        ahead_s = seconds_ahead(state.version, self._clock())
        if ahead_s <= self._max_skew_s:
            return True
        log_event(
            log,
            "apply.state_version_ahead",
            logging.WARNING,
            cluster=state.cluster_id,
            target=state.target,
            version=state.version,
            ahead_s=round(ahead_s),
        )
        return False

    def authorise(self, snapshot: Snapshot, state: AppliedState | None) -> None:
        """Refuse a snapshot whose cluster, tag name or target aksfw would not send.

        The tag name must be the one the inventory gives the cluster; for a cluster no
        longer monitored, the one its applied state on this target holds. The target must
        be one the configuration names.

        Raises:
            MalformedMessage: the snapshot names anything else.
            Retryable, AuthError, NonRetryable: the inventory or Panorama's device-group
                list could not be read.
        """
        where = (
            f"cluster {snapshot.cluster_id}, tag name {snapshot.tag_name!r}, "
            f"target {snapshot.target!r}"
        )
        expected, source = self._expected_tag_name(snapshot, state)
        if expected is None:
            raise UnknownSnapshotCluster(
                f"snapshot refused ({where}): the cluster is not monitored and has no "
                "applied state on that target"
            )
        if snapshot.tag_name != expected:
            raise MalformedMessage(
                f"snapshot refused ({where}): the {source} gives this cluster the tag name "
                f"{expected!r}"
            )
        if not self._targets.is_configured(snapshot.target):
            raise MalformedMessage(
                f"snapshot refused ({where}): the configuration names no such target"
            )

    def _expected_tag_name(
        self, snapshot: Snapshot, state: AppliedState | None
    ) -> tuple[str | None, str]:
        """The tag name the cluster may use on this target, and where it comes from."""
        try:
            cluster = self._clusters(snapshot.cluster_id)
        except AksfwError as error:
            if state is None or state.tag_name != snapshot.tag_name:
                raise
            # The snapshot only touches what aksfw's own record says it already owns there,
            # so an inventory outage need not stop it.
            log_event(
                log,
                "apply.inventory_unavailable",
                logging.WARNING,
                cluster=snapshot.cluster_id,
                target=snapshot.target,
                error=f"{type(error).__name__}: {error}",
            )
            return state.tag_name, "applied state"
        if cluster is not None:
            return cluster.tag_name, "inventory"
        if state is not None:
            return state.tag_name, "applied state"
        return None, "inventory"


def check_snapshot(snapshot: Snapshot) -> None:
    """Refuse a snapshot that could touch tags its cluster does not own.

    Raises:
        MalformedMessage: a bad tag name or target, a tag outside the cluster's, or a key
            that is not an IP address (a network only under the node-subnet tag).
    """
    try:
        check_cluster_name(snapshot.tag_name)
    except InputError as error:
        raise MalformedMessage(f"snapshot: {error}") from None
    if snapshot.target != PANORAMA_TARGET and not is_firewall_serial(snapshot.target):
        raise MalformedMessage(f"snapshot: target {snapshot.target!r} is not panorama or a serial")
    owned = ownership(snapshot.tag_name)
    for ip, tags in snapshot.tags.items():
        for tag in tags:
            if not owned.match(tag) or not registrable(tag):
                raise MalformedMessage(
                    f"snapshot: tag {tag[:140]!r} on {ip} is not {snapshot.tag_name}'s"
                )
        problem = entry_problem(snapshot.tag_name, ip, tags)
        if problem is not None:
            raise MalformedMessage(f"snapshot: {problem}")


def check_tombstone(snapshot: Snapshot, state: AppliedState) -> None:
    """Refuse a tombstone that does not match aksfw's own record for its cluster and
    target: it may remove only the tags saved there, under the saved tag name.

    Raises:
        MalformedMessage: the tag name or the target differs from the applied state's.
    """
    where = (
        f"cluster {snapshot.cluster_id}, tag name {snapshot.tag_name!r}, target {snapshot.target!r}"
    )
    if snapshot.tag_name != state.tag_name:
        raise MalformedMessage(
            f"tombstone refused ({where}): the applied state there is under the tag name "
            f"{state.tag_name!r}"
        )
    if snapshot.target != state.target:
        raise MalformedMessage(
            f"tombstone refused ({where}): the applied state is for target {state.target!r}"
        )
