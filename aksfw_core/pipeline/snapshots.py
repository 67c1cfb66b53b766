"""Resync one cluster: list its Services, compute its tags once, and queue one snapshot per
target unless that target already has (or is about to get) exactly those tags.

Whether a target has them is read from two listings per cluster (the applied states'
summaries and the enqueued marks), not from the states themselves; a large snapshot for
many targets is stored once and shared by their messages (`MessageQueues.send_snapshots`).

A resync that would remove most of a cluster's IP-tag pairs from what aksfw applied (an
empty list from a misconfigured cluster looks exactly like every Service deleted) is held
back: nothing is queued, the hold is noted beside the applied states (shared by every
instance), and a confirming resync is queued `limits.mass_removal_confirm_delay_s` later.
Only if that second list computes the same tags does the removal go ahead; other resyncs
in the meantime find the hold and queue nothing. A confirmation that disagrees and is
again a mass removal holds again, `MAX_CONFIRMATIONS` times at most in a row; then the
cluster stays held until a resync after the hold's window starts over. Tombstones (the
cluster deleted or no longer monitored) never come here: they are deliberate.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import NamedTuple

from aksfw_core.azure.access import ClusterAccess
from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.errors import AuthError
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.node_subnet_tags import NodeSubnetTags
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.state import EnqueuedMark, HeldBack, StateSummary
from aksfw_core.pipeline.state_store import ListedHold, StateStore
from aksfw_core.rules.messages import ResyncRequest, Snapshot, fingerprint
from aksfw_core.rules.model import IpTags, WarningKind
from aksfw_core.rules.plan import MassRemoval, mass_removal
from aksfw_core.rules.services import parse_service_items
from aksfw_core.rules.tags import compute_tags

log = logging.getLogger(__name__)

MAX_CONFIRMATIONS = 3
"""Confirming resyncs one hold queues in a row at most while each list disagrees with the
one before (Services flapping): the chain ends, and the cluster stays held until a resync
after the hold's window starts a new one."""
HOLD_WINDOW_SLACK_S = 60.0
"""Seconds past the confirmation delay during which a hold suppresses the confirmations
of other resyncs; after it, a resync that still sees the removal confirms it anew (the
confirmation may have been lost)."""


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
        limits: Limits | None = None,
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
        self._limits = limits or Limits()

    def resync(
        self, request: ResyncRequest, cluster: MonitoredCluster | None = None
    ) -> list[Snapshot]:
        """Queue the snapshots the cluster's current Services call for. `cluster` is the
        monitored cluster when the caller has resolved it already (an event).

        A mass removal is held back instead (the module's docstring): nothing is queued.

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
        summaries, hold = self._state.summaries_and_hold(cluster.id)
        applied = {listed.summary.target.lower(): listed.summary for listed in summaries}
        if not request.audit:
            targets = self._not_there(cluster.id, targets, wanted_fingerprint, applied)
        removal = self._mass_removal(targets, applied, wanted)
        if self._held_back(request, cluster.id, wanted_fingerprint, removal, hold):
            return []
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
            if warning.kind is WarningKind.SELECTOR_UNMATCHED:
                log_event(
                    log,
                    "selector.unmatched",
                    logging.WARNING,
                    cluster=cluster.id,
                    selector=warning.selector,
                    detail=warning.message,
                )
                continue
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

    def _not_there(
        self,
        cluster_id: str,
        targets: list[str],
        wanted: str,
        applied: Mapping[str, StateSummary],
    ) -> list[str]:
        """The targets that neither hold the tags with fingerprint `wanted` (cleanly
        applied, by `applied`: summaries by lower-cased target) nor have had them queued
        within the enqueued-mark TTL."""

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

    def _mass_removal(
        self, targets: list[str], applied: Mapping[str, StateSummary], wanted: IpTags
    ) -> _Removal | None:
        """The largest mass removal that queuing `wanted` for `targets` would be, from the
        applied summaries' counts (no state is read): a target whose applied pairs exceed
        the wanted ones loses at least the difference."""
        wanted_pairs = sum(len(tags) for tags in wanted.values())
        worst: _Removal | None = None
        for target in targets:
            summary = applied.get(target.lower())
            if summary is None:
                continue
            found = mass_removal(
                max(0, summary.tags - wanted_pairs),
                summary.tags,
                wanted_pairs,
                self._limits.mass_removal_fraction,
                self._limits.mass_removal_min_pairs,
            )
            if found is not None and (worst is None or found.removing > worst.removal.removing):
                worst = _Removal(found, summary.target)
        return worst

    def _held_back(
        self,
        request: ResyncRequest,
        cluster_id: str,
        wanted: str,
        removal: _Removal | None,
        hold: ListedHold | None,
    ) -> bool:
        """Whether this resync is held back (it queues nothing); notes or clears the hold
        and queues the confirmation as the module's docstring says.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        if removal is None:
            if hold is not None:
                self._state.clear_held(cluster_id)
                log_event(log, "resync.hold_released", cluster=cluster_id, reason=request.reason)
            return False
        now = self._clock()
        if request.confirm and hold is not None and hold.held.fingerprint == wanted:
            self._state.clear_held(cluster_id)
            log_event(
                log,
                "resync.mass_removal_confirmed",
                logging.WARNING,
                cluster=cluster_id,
                target=removal.target,
                pairs_to_remove=removal.removal.removing,
                pairs_applied=removal.removal.registered,
                held_s=round(now - hold.held.since),
            )
            return False
        delay_s = self._limits.mass_removal_confirm_delay_s
        confirm = True
        if hold is None:
            held = HeldBack(cluster_id, wanted, now, now, removal.removal.removing, 1)
        elif request.confirm:  # the second list disagrees with the first
            confirm = hold.held.confirmations < MAX_CONFIRMATIONS
            held = replace(
                hold.held,
                fingerprint=wanted,
                held_at=now,
                pairs_to_remove=removal.removal.removing,
                confirmations=hold.held.confirmations + (1 if confirm else 0),
            )
        elif now - hold.held.held_at < delay_s + HOLD_WINDOW_SLACK_S:
            self._log_held(request, removal, hold.held, "a confirmation is pending", None)
            return True
        else:  # the confirmation is overdue (lost, or the chain ended): start over
            held = replace(
                hold.held,
                fingerprint=wanted,
                held_at=now,
                pairs_to_remove=removal.removal.removing,
                confirmations=1,
            )
        if not self._state.save_held(held, None if hold is None else hold.etag):
            # Another instance held (or let through) this cluster a moment ago.
            self._log_held(request, removal, held, "another resync holds it", None)
            return True
        if not confirm:
            self._log_held(request, removal, held, "the lists keep disagreeing", None)
            return True
        self._queues.send(
            self._queues.names.resync_queue,
            ResyncRequest(cluster_id, "confirm a held-back mass removal", confirm=True),
            delay_s=max(1, math.ceil(delay_s)),
        )
        self._log_held(request, removal, held, "confirmation queued", delay_s)
        return True

    def _log_held(
        self,
        request: ResyncRequest,
        removal: _Removal,
        held: HeldBack,
        state: str,
        confirm_in_s: float | None,
    ) -> None:
        why = (
            f"would remove {removal.removal.removing} of the {removal.removal.registered} "
            f"IP-tag pairs aksfw applied on {removal.target}: a misconfigured cluster or an "
            "empty list? Applied only if a second list a little later agrees"
        )
        log_event(
            log,
            "resync.held_back",
            logging.WARNING,
            cluster=held.cluster_id,
            reason=request.reason,
            target=removal.target,
            pairs_to_remove=removal.removal.removing,
            pairs_applied=removal.removal.registered,
            confirmations=held.confirmations,
            state=state,
            confirm_in_s=confirm_in_s,
            detail=why,
        )


class _Removal(NamedTuple):
    removal: MassRemoval
    target: str
    """The target that would lose the most."""
