"""Resync one cluster: list its Services, compute its tags, and queue one snapshot per
target unless that target already has (or is about to get) exactly those tags.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aksfw_core.aks.access import ClusterAccess
from aksfw_core.aks.discovery import ClusterDiscovery
from aksfw_core.errors import AuthError
from aksfw_core.inventory import MonitoredCluster
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.messages import ResyncRequest, Snapshot
from aksfw_core.services import parse_service_items
from aksfw_core.state import EnqueuedMark
from aksfw_core.storage import Storage
from aksfw_core.tags import compute_tags
from aksfw_core.targets import TargetResolver

log = logging.getLogger(__name__)


class Resyncer:
    """Handles `cluster-resync` messages (and the Event Grid handler's immediate resync)."""

    def __init__(
        self,
        discovery: ClusterDiscovery,
        access: ClusterAccess,
        storage: Storage,
        *,
        targets: TargetResolver,
        enqueued_mark_ttl_s: float = Limits.enqueued_mark_ttl_s,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._discovery = discovery
        # After this an identical snapshot is queued again, so a lost message heals.
        self._enqueued_mark_ttl_s = enqueued_mark_ttl_s
        self._access = access
        self._storage = storage
        self._targets = targets
        self._clock = clock

    def resync(self, request: ResyncRequest) -> list[Snapshot]:
        """Queue the snapshots the cluster's current Services call for.

        Raises:
            AuthError, Retryable, NonRetryable: the cluster, Azure or Panorama could not be
                read; nothing is queued, so nothing is removed.
        """
        cluster = self._discovery.inventory_knowing(request.cluster_id).find(request.cluster_id)
        if cluster is None:
            log_event(log, "resync.not_monitored", cluster=request.cluster_id)
            return []
        started = self._clock()
        version = time.time_ns()
        wanted = self._wanted(cluster)
        queued = []
        for target in self.targets():
            snapshot = Snapshot(
                cluster_id=cluster.id,
                tag_name=cluster.tag_name,
                target=target,
                version=version,
                tags=wanted,
                audit=request.audit,
            )
            if request.audit or not self._already_there(snapshot):
                self._storage.send(self._storage.names.updates_queue, snapshot)
                self._storage.save_enqueued(
                    EnqueuedMark(cluster.id, target, version, snapshot.fingerprint, self._clock())
                )
                queued.append(snapshot)
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
        return dict(result.tags)

    def _already_there(self, snapshot: Snapshot) -> bool:
        applied, _ = self._storage.load_applied(snapshot.cluster_id, snapshot.target)
        if applied is not None and applied.dirty:
            return False  # the last apply failed or was refused in part: send again
        if applied is not None and applied.fingerprint == snapshot.fingerprint:
            return True
        mark = self._storage.load_enqueued(snapshot.cluster_id, snapshot.target)
        return (
            mark is not None
            and mark.fingerprint == snapshot.fingerprint
            and self._clock() - mark.enqueued_at < self._enqueued_mark_ttl_s
        )
