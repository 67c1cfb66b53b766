"""Resync one cluster: list its Services, compute its tags once, and queue one snapshot per
target unless that target already has (or is about to get) exactly those tags.

Whether a target has them is read from two listings per cluster (the applied states'
summaries and the enqueued marks), not from the states themselves; a large snapshot for
many targets is stored once and shared by their messages (`MessageQueues.send_snapshots`).

A resync that would remove most of a cluster's IP-tag pairs from what aksfw applied (an
empty list from a misconfigured cluster looks exactly like every Service deleted, a
credential that points at another cluster like every Service replaced) is held back:
nothing is queued, the hold is noted beside the applied states (shared by every instance),
and a confirming resync is queued `limits.mass_removal_confirm_delay_s` later. Only if
that second list computes the same tags does the removal go ahead; other resyncs in the
meantime find the hold and queue nothing. A confirmation that disagrees and is again a
mass removal holds again, `limits.mass_removal_max_confirmations` times at most in a row;
then the cluster stays held until a resync after the hold's window starts over. Tombstones
(the cluster deleted or no longer monitored) never come here: they are deliberate. What to
do is decided by `decisions.hold_step`; this module carries it out.

What counts is what would actually be unregistered (`rules.plan.removal_of`, the command
line's rule too): the applied pairs that are not wanted, the cluster's Resource Manager
entries (node subnets, outbound addresses) left out. Read cost: nothing for a target
whose summary has the wanted fingerprint or none; when the summaries' counts alone show a
mass removal, nothing either; otherwise one applied-state download per target whose
summary has another fingerprint (a change, so the read is justified).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping

from aksfw_core.azure.access import ClusterAccess
from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.errors import AuthError
from aksfw_core.kube import KubernetesServices
from aksfw_core.kube_egress import StaticGateways
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.decisions import (
    HoldStep,
    Removal,
    changed,
    counted_removal,
    hold_step,
    needs_marks,
    not_queued_recently,
    unapplied,
    worst_removal,
)
from aksfw_core.pipeline.egress_tags import EgressTags
from aksfw_core.pipeline.node_subnet_tags import NodeSubnetTags
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.state import AppliedState, EnqueuedMark, HeldBack, StateSummary
from aksfw_core.pipeline.state_store import ListedHold, StateStore
from aksfw_core.rules.egress import merged
from aksfw_core.rules.messages import ResyncRequest, Snapshot, fingerprint
from aksfw_core.rules.model import IpTags, TagWarning, WarningKind
from aksfw_core.rules.services import parse_service_items
from aksfw_core.rules.tag_options import TagOptions
from aksfw_core.rules.tags import compute_tags

log = logging.getLogger(__name__)

TagOptionsFor = Callable[[MonitoredCluster], TagOptions]
"""A cluster's opt-in tags (`Settings.tag_options_for` its entry of `clusters[]`)."""


class Resyncer:
    """Handles `cluster-resync` messages (and the Event Grid handler's immediate resync)."""

    def __init__(
        self,
        discovery: ClusterDiscovery,
        access: ClusterAccess,
        queues: MessageQueues,
        store: StateStore,
        *,
        targets: TargetResolver,
        clock: Callable[[], float] = time.time,
        node_subnets: NodeSubnetTags | None = None,
        limits: Limits | None = None,
        tag_options: TagOptionsFor | None = None,
        egress: EgressTags | None = None,
    ) -> None:
        self._discovery = discovery
        self._egress = egress
        self._tag_options = tag_options or (lambda cluster: TagOptions())
        self._node_subnets = node_subnets
        self._access = access
        self._queues = queues
        self._store = store
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
        version = int(started * 1e9)
        wanted = self._wanted(cluster)
        wanted_fingerprint = fingerprint(wanted)  # once per cluster, not per target
        targets = self.targets()
        summaries, hold = self._store.summaries_and_hold(cluster.id)
        applied = {listed.summary.target.lower(): listed.summary for listed in summaries}
        if not request.audit:
            targets = self._not_there(cluster.id, targets, wanted_fingerprint, applied)
        removal = removal_to_hold(
            self._store,
            self._limits,
            cluster,
            targets=targets,
            applied=applied,
            wanted=wanted,
            wanted_fingerprint=wanted_fingerprint,
        )
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
                compare_since=request.compare_since,
            )
            for target in targets
        ]
        self._queues.send_snapshots(queued)
        enqueued_at = self._clock()
        for snapshot in queued:
            self._store.save_enqueued(
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
            try:
                items = services.list_items()
            except AuthError:
                self._access.forget(cluster.id)  # fetch a fresh credential next time
                raise
            entries = self._entries(cluster, services)
        finally:
            services.close()
        listed = parse_service_items(items)
        options = self._tag_options(cluster)
        result = compute_tags(
            cluster.tag_name, listed.services, cluster.selectors, options, entries
        )
        log_tag_warnings(cluster.id, (*listed.warnings, *result.warnings))
        return dict(result.tags)

    def _entries(self, cluster: MonitoredCluster, services: KubernetesServices) -> IpTags:
        """The cluster's entries that no Service decides: its node subnets and egress
        addresses, each read now or kept (`kept_entries`); its gateways are listed on the
        Services' API client."""
        found: list[IpTags] = []
        if self._node_subnets is not None:
            found.append(self._node_subnets.wanted(cluster))
        if self._egress is not None:
            gateways = StaticGateways(services.api_client, self._limits)
            found.append(self._egress.wanted(cluster, gateways.gateways))
        return merged(*found)

    def _not_there(
        self,
        cluster_id: str,
        targets: list[str],
        wanted: str,
        applied: Mapping[str, StateSummary],
    ) -> list[str]:
        """The targets that neither hold the tags with fingerprint `wanted` (cleanly
        applied, by `applied`: summaries by lower-cased target) nor have had them queued
        within the enqueued-mark TTL (`limits.enqueued_mark_ttl_s`)."""
        pending = unapplied(targets, applied, wanted)
        if not needs_marks(pending, applied):
            return pending
        marks = self._store.enqueued_marks(cluster_id)
        ttl_s = self._limits.enqueued_mark_ttl_s
        return not_queued_recently(
            pending, applied, marks, wanted, now=self._clock(), mark_ttl_s=ttl_s
        )

    def _held_back(
        self,
        request: ResyncRequest,
        cluster_id: str,
        wanted: str,
        removal: Removal | None,
        hold: ListedHold | None,
    ) -> bool:
        """Whether this resync is held back (it queues nothing); notes or clears the hold
        and queues the confirmation as `decisions.hold_step` decides.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        now = self._clock()
        delay_s = self._limits.mass_removal_confirm_delay_s
        decision = hold_step(
            cluster_id=cluster_id,
            wanted=wanted,
            removal=removal,
            hold=None if hold is None else hold.held,
            confirming=request.confirm,
            now=now,
            limits=self._limits,
        )
        step = decision.step
        if step in (HoldStep.RELEASE, HoldStep.CONFIRMED):
            self._store.clear_held(cluster_id)
        if step is HoldStep.RELEASE:
            log_event(log, "resync.hold_released", cluster=cluster_id, reason=request.reason)
        if step is HoldStep.CONFIRMED and removal is not None and hold is not None:
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
        if not decision.held_back:
            return False
        assert removal is not None  # held back only for a mass removal
        if decision.held is None:  # WAIT
            assert hold is not None
            self._log_held(request, removal, hold.held, "a confirmation is pending", None)
            return True
        held = decision.held
        if not self._store.save_held(held, None if hold is None else hold.etag):
            # Another instance held (or let through) this cluster a moment ago.
            self._log_held(request, removal, held, "another resync holds it", None)
            return True
        if step is HoldStep.STOP:
            self._log_held(request, removal, held, "the lists keep disagreeing", None)
            return True
        self._queues.send(
            ResyncRequest(cluster_id, "confirm a held-back mass removal", confirm=True),
            delay_s=max(1, math.ceil(delay_s)),
        )
        self._log_held(request, removal, held, "confirmation queued", delay_s)
        return True

    def _log_held(
        self,
        request: ResyncRequest,
        removal: Removal,
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


def removal_to_hold(
    store: StateStore,
    limits: Limits,
    cluster: MonitoredCluster,
    *,
    targets: list[str],
    applied: Mapping[str, StateSummary],
    wanted: IpTags,
    wanted_fingerprint: str,
) -> Removal | None:
    """The largest mass removal queuing `wanted` for `targets` would be: by the summaries'
    counts if they show one, else by what each target whose summary has another
    fingerprint would actually unregister (its applied state is read from `store`).

    Raises:
        AuthError, Retryable, NonRetryable: Storage failed, or a state is unreadable.
    """
    fraction, min_pairs = limits.mass_removal_fraction, limits.mass_removal_min_pairs
    counted = counted_removal(
        cluster.tag_name,
        targets,
        applied,
        wanted_fingerprint,
        wanted,
        fraction=fraction,
        min_pairs=min_pairs,
    )
    if counted is not None:
        return counted
    states: list[AppliedState] = []
    for target in changed(targets, applied, wanted_fingerprint):
        state, _ = store.load_applied(cluster.id, target)
        if state is not None:  # None: removed since the listing
            states.append(state)
    return worst_removal(cluster.tag_name, states, wanted, fraction, min_pairs)


def log_tag_warnings(cluster_id: str, warnings: Iterable[TagWarning]) -> None:
    """One log event per warning of a cluster's tags: `selector.unmatched` for a selector
    that selects nothing, `tags.warning` (with its kind) for the rest."""
    for warning in warnings:
        if warning.kind is WarningKind.SELECTOR_UNMATCHED:
            log_event(
                log,
                "selector.unmatched",
                logging.WARNING,
                cluster=cluster_id,
                selector=warning.selector,
                detail=warning.message,
            )
            continue
        log_event(
            log,
            "tags.warning",
            logging.WARNING,
            cluster=cluster_id,
            kind=warning.kind.value,
            detail=warning.message,
        )
