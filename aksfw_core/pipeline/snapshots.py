"""Resync one cluster: list its Services, compute its tags once, and queue one snapshot per
target unless that target already has (or is about to get) exactly those tags.

Whether a target has them is read from two listings per cluster (the applied states'
summaries and the enqueued marks), not from the states themselves; a large snapshot for
many targets is stored once and shared by their messages (`MessageQueues.send_snapshots`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aksfw_core.azure.access import ClusterAccess
from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.errors import AuthError
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.node_subnet_tags import NodeSubnetTags
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.state import EnqueuedMark
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.rules.messages import ResyncRequest, Snapshot, fingerprint
from aksfw_core.rules.services import parse_service_items
from aksfw_core.rules.tags import compute_tags

log = logging.getLogger(__name__)


class Resyncer:
    """Handles `cluster-resync` messages (and the Event Grid handler's immediate resync)."""

    def __init__(
        self,
        discovery: ClusterDiscovery,
        access: ClusterAccess,
        queues: MessageQueues,
        state: StateStore,
        *,
        targets: TargetResolver,
        enqueued_mark_ttl_s: float = Limits.enqueued_mark_ttl_s,
        clock: Callable[[], float] = time.time,
        node_subnets: NodeSubnetTags | None = None,
    ) -> None:
        self._discovery = discovery
        self._node_subnets = node_subnets
        # After this an identical snapshot is queued again, so a lost message heals.
        self._enqueued_mark_ttl_s = enqueued_mark_ttl_s
        self._access = access
        self._queues = queues
        self._state = state
        self._targets = targets
        self._clock = clock

    def resync(
        self, request: ResyncRequest, cluster: MonitoredCluster | None = None
    ) -> list[Snapshot]:
        """Queue the snapshots the cluster's current Services call for. `cluster` is the
        monitored cluster when the caller has resolved it already (an event).

        Raises:
            AuthError, Retryable, NonRetryable: the cluster, Azure or Panorama could not be
                read; nothing is queued, so nothing is removed.
        """
        if cluster is None:
            inventory = self._discovery.inventory_knowing(request.cluster_id)
            cluster = inventory.find(request.cluster_id)
        if cluster is None:
            log_event(log, "resync.not_monitored", cluster=request.cluster_id)
            return []
        started = self._clock()
        version = time.time_ns()
        wanted = self._wanted(cluster)
        wanted_fingerprint = fingerprint(wanted)  # once per cluster, not per target
        targets = self.targets()
        if not request.audit:
            targets = self._not_there(cluster.id, targets, wanted_fingerprint)
        queued = [
            Snapshot(
                cluster.id,
                cluster.tag_name,
                target,
                version,
                wanted,
                audit=request.audit,
                origin_time=request.origin_time,  # the lag runs from the change, not from here
            )
            for target in targets
        ]
        self._queues.send_snapshots(self._queues.names.updates_queue, queued)
        enqueued_at = self._clock()
        for snapshot in queued:
            self._state.save_enqueued(
                EnqueuedMark(cluster.id, snapshot.target, version, wanted_fingerprint, enqueued_at)
            )
        log_event(
            log,
            "resync.cluster",
            cluster=cluster.id,
            reason=request.reason,
            ips=len(wanted),
            queued=[s.target for s in queued],
            duration_ms=round((self._clock() - started) * 1000),
        )
        return queued

    def targets(self) -> list[str]:
        """`panorama`, configured serials, and the connected firewalls of device groups.

        Raises:
            AuthError, NonRetryable, Retryable: Panorama could not list its device groups.
        """
        return self._targets.names()

    def _wanted(self, cluster: MonitoredCluster) -> dict[str, frozenset[str]]:
        services = self._access.services(cluster)
        try:
            items = services.list_items()
        except AuthError:
            self._access.forget(cluster.id)  # fetch a fresh credential next time
            raise
        finally:
            services.close()
        listed = parse_service_items(items)
        result = compute_tags(cluster.tag_name, listed.services, cluster.selectors)
        for warning in (*listed.warnings, *result.warnings):
            log_event(
                log,
                "tags.warning",
                logging.WARNING,
                cluster=cluster.id,
                kind=warning.kind.value,
                detail=warning.message,
            )
        wanted = dict(result.tags)
        if self._node_subnets is not None:  # networks: never the same keys as Service IPs
            wanted.update(self._node_subnets.wanted(cluster))
        return wanted

    def _not_there(self, cluster_id: str, targets: list[str], wanted: str) -> list[str]:
        """The targets that neither hold the tags with fingerprint `wanted` (cleanly
        applied) nor have had them queued within the enqueued-mark TTL."""
        applied = {
            listed.summary.target.lower(): listed.summary
            for listed in self._state.summaries(cluster_id)
        }

        def dirty(target: str) -> bool:  # the last apply failed or was refused in part
            summary = applied.get(target.lower())
            return summary is not None and summary.dirty

        def applied_already(target: str) -> bool:
            summary = applied.get(target.lower())
            return summary is not None and not summary.dirty and summary.fingerprint == wanted

        pending = [target for target in targets if not applied_already(target)]
        if all(dirty(target) for target in pending):
            return pending
        marks = self._state.enqueued_marks(cluster_id)
        now = self._clock()

        def queued_recently(target: str) -> bool:
            mark = marks.get(target.lower())
            return (
                mark is not None
                and mark.fingerprint == wanted
                and now - mark.enqueued_at < self._enqueued_mark_ttl_s
            )

        return [target for target in pending if dirty(target) or not queued_recently(target)]
