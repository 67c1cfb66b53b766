"""The whole engine wired together for the Functions app: what each trigger does.

`function_app.py` only forwards to `aksfw_core.functions`, which calls this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aksfw_core.azure.access import ClusterAccess
from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.events import (
    WATCHER_CHANGE,
    ChangeKind,
    Resolution,
    read_event,
    resolve,
)
from aksfw_core.azure.identity import azure_credential
from aksfw_core.azure.inventory import Inventory, MonitoredCluster
from aksfw_core.azure.node_subnets import NodeSubnets
from aksfw_core.config import Settings, load_settings
from aksfw_core.errors import AksfwError, InputError
from aksfw_core.logs import log_event
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.applier import Applier, ApplyOutcome
from aksfw_core.pipeline.coordination import Coordination
from aksfw_core.pipeline.node_subnet_tags import NodeSubnetTags
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.replay import PoisonReplay, ReplayReport
from aksfw_core.pipeline.snapshots import Resyncer
from aksfw_core.pipeline.state import StateSummary, cluster_key
from aksfw_core.pipeline.state_store import ListedSummary, StateStore
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.rules.messages import (
    PANORAMA_TARGET,
    MalformedMessage,
    ResyncRequest,
    Snapshot,
    TraceContext,
)
from aksfw_core.telemetry import Telemetry

log = logging.getLogger(__name__)


UNINSTALL_HOLD_S = 3600.0
"""Seconds an uninstall holds every resync and snapshot back, so that nothing registers
again while `azd down` removes the app (the hold ends by itself if the app stays)."""
_UNINSTALL_CLAIM = "uninstall"


class UnknownCluster(InputError):
    """An HTTP resync named a cluster that is not monitored."""


class Uninstalling(AksfwError):
    """A resync was asked for while an uninstall holds resyncs back."""


@dataclass
class Aksfw:
    """One process's engine: settings, adapters and the handlers built on them."""

    settings: Settings
    queues: MessageQueues
    state: StateStore
    discovery: ClusterDiscovery
    resyncer: Resyncer
    applier: Applier
    coordination: Coordination
    clock: Callable[[], float] = time.time
    telemetry: Telemetry = field(default_factory=Telemetry)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], telemetry: Telemetry | None = None) -> Aksfw:
        """Build from the app settings; `telemetry` defaults to the global providers'.

        Raises:
            InputError: a missing or invalid setting, naming it.
        """
        settings = load_settings(environ)
        if settings.panorama is None:
            raise InputError("config.panorama: required by the Functions app")
        key = environ.get("PANORAMA_API_KEY")
        if not key:
            raise InputError("PANORAMA_API_KEY is not set (a Key Vault reference in Azure)")
        secret = api_key(key)
        credential = azure_credential(environ)
        account = StorageAccount.from_environ(environ, credential, settings.limits)
        queues = MessageQueues(account, settings.limits)
        state = StateStore(account)
        discovery = ClusterDiscovery(settings, credential)
        coordination = Coordination(account)
        panorama = settings.panorama
        telemetry = telemetry or Telemetry()

        def panorama_for(target: str) -> PanoramaClient:
            return PanoramaClient(panorama.for_target(target), secret, telemetry.tracer)

        def monitored(cluster_id: str) -> MonitoredCluster | None:
            return discovery.inventory_knowing(cluster_id).find(cluster_id)

        # One resolver, so the resyncer and the applier share its firewall-list cache.
        targets = TargetResolver(
            panorama.targets,
            lambda: panorama_for(PANORAMA_TARGET),
            limits=settings.limits,
        )
        resyncer = Resyncer(
            discovery,
            ClusterAccess(settings, credential),
            queues,
            state,
            targets=targets,
            enqueued_mark_ttl_s=settings.limits.enqueued_mark_ttl_s,
            node_subnets=NodeSubnetTags(NodeSubnets(settings, credential).read, state),
            limits=settings.limits,
        )
        applier = Applier(
            state,
            panorama_for,
            clusters=monitored,
            targets=targets,
            lock=lambda cluster_id, target: coordination.apply_lock(
                cluster_id, target, settings.limits.apply_lock_wait_s
            ),
            max_version_skew_s=settings.limits.max_version_skew_s,
        )
        return cls(
            settings, queues, state, discovery, resyncer, applier, coordination, telemetry=telemetry
        )

    # ------------------------------------------------------------------ triggers

    def on_event(self, document: object, origin_time: float | None = None) -> Resolution:
        """Event Grid: queue a resync of the affected clusters now, and once more a little
        later. `origin_time` is the event's time (the lag is measured from it).

        Raises:
            MalformedEvent: the event cannot be read (log it and drop it).
            AksfwError: the inventory could not be read (Event Grid redelivers).
        """
        event = read_event(document)
        inventory = self.discovery.inventory()
        resolution = resolve(event, inventory)
        if resolution.unknown_cluster:
            inventory = self.discovery.inventory_knowing(resolution.unknown_cluster)
            resolution = resolve(event, inventory)
        for change in resolution.clusters:
            if change.kind is ChangeKind.TOMBSTONE:
                self.tombstone(change.id, change.reason)
                self.discovery.refresh()  # rare, and the cached inventory still lists it
                continue
            if self.uninstall_held_until() is not None:
                log_event(log, "event.held", cluster=change.id, event_id=event.id)
                continue
            request = ResyncRequest(
                change.id, f"event {event.type}: {change.reason}", origin_time=origin_time
            )
            # Coalescing is safe only while a follow-up resync will read the cluster again.
            window = min(
                self.settings.limits.event_resync_window_s, self.settings.resync.follow_up_delay_s
            )
            if window <= 0 or self.coordination.claim(f"resync/{cluster_key(change.id)}", window):
                # Enqueue only: Event Grid waits 30 s for an answer, and a cold start plus a
                # Kubernetes list could pass that and bring the event again. The list runs in
                # the cluster-resync function, with the queue's retries.
                self.queues.send(self.queues.names.resync_queue, request)
            else:
                # Another event (on any instance) resynced this cluster a moment ago; the
                # follow-up below reads it again after the burst.
                log_event(log, "event.coalesced", cluster=change.id, event_id=event.id)
            self._follow_up(change.id)
            if event.type == WATCHER_CHANGE:
                self._note_watcher_event(change.id)
        log_event(
            log,
            "event.resolved",
            event_id=event.id,
            event_type=event.type,
            clusters=[c.id for c in resolution.clusters],
            reason=resolution.reason,
        )
        return resolution

    def on_timer(self) -> None:
        """Fan out one resync per monitored cluster; tombstone clusters no longer monitored;
        delete old payload blobs. Reads the applied states' summaries, never the states.

        Raises:
            AksfwError: Azure could not be read; nothing is tombstoned.
        """
        held = self.uninstall_held_until()
        if held is not None:
            log_event(log, "timer.held", until=_iso(held))
            return
        inventory = self.discovery.refresh()
        audit = self._audit_due()
        for cluster in inventory.clusters:
            self.queues.send(
                self.queues.names.resync_queue, ResyncRequest(cluster.id, "timer", audit=audit)
            )
        monitored = {cluster.id.casefold() for cluster in inventory.clusters}
        gone = [
            listed
            for listed in self.state.summaries()
            if listed.summary.cluster_id.casefold() not in monitored
        ]
        tombstoned = [listed for listed in gone if self._missing_long_enough(listed)]
        for listed in tombstoned:
            self._tombstone_target(listed.summary, "no longer monitored")
        payloads = self.queues.delete_old_payloads(self.clock())
        log_event(
            log,
            "timer.fanned_out",
            clusters=len(inventory.clusters),
            unmonitored=len(gone),
            tombstoned=len(tombstoned),
            payloads_deleted=payloads,
            audit=audit,
        )
        self._record_queue_depths()

    def on_resync_message(
        self, body: str | bytes, invocation: TraceContext | None = None
    ) -> list[Snapshot]:
        """`cluster-resync` queue: resync one cluster, in the trace the message carries
        (else the host's `invocation`).

        Raises:
            MalformedMessage: not a resync request (poison it).
            AksfwError: as `Resyncer.resync`.
        """
        with self.telemetry.failures("resync"):
            request = self.queues.receive(body)
            if not isinstance(request, ResyncRequest):
                raise MalformedMessage("message: expected a resync request on the resync queue")
            if self.uninstall_held_until() is not None:
                log_event(log, "resync.held", cluster=request.cluster_id, reason=request.reason)
                return []
        with self.telemetry.activity(
            "aksfw.resync",
            "resync",
            parent=request.trace,
            invocation=invocation,
            cluster=request.cluster_id,
        ):
            return self.resyncer.resync(request)

    def on_update_message(
        self, body: str | bytes, invocation: TraceContext | None = None
    ) -> ApplyOutcome:
        """`panorama-updates` queue: apply one snapshot, in the trace the message carries
        (else the host's `invocation`).

        Raises:
            MalformedMessage: not a valid snapshot (poison it).
            AksfwError: as `Applier.apply`.
        """
        with self.telemetry.failures("apply"):
            snapshot = self.queues.receive(body)
            if not isinstance(snapshot, Snapshot):
                raise MalformedMessage("message: expected a snapshot on the updates queue")
            # A snapshot listed before an uninstall would register its tags again after the
            # tombstone removed them: while uninstalling only tombstones apply.
            if not snapshot.tombstone and self.uninstall_held_until() is not None:
                log_event(log, "apply.held", cluster=snapshot.cluster_id, target=snapshot.target)
                return ApplyOutcome("held")
        return self.telemetry.apply(snapshot, self.applier.apply, invocation)

    def request_resync(self, cluster: str | None, audit: bool = False) -> list[str]:
        """Queue a resync of one cluster (resource ID, name or tag name) or of all.

        Raises:
            UnknownCluster: no monitored cluster has that ID or name.
            Uninstalling: an uninstall holds resyncs back.
            AksfwError: the inventory could not be read.
        """
        held = self.uninstall_held_until()
        if held is not None:
            raise Uninstalling(f"uninstalling: resyncs are held back until {_iso(held)}")
        inventory = self.discovery.inventory()
        if cluster is None:
            chosen = list(inventory.clusters)
        else:
            found = _find(inventory, cluster) or _find(
                self.discovery.inventory_knowing(cluster), cluster
            )
            if found is None:
                raise UnknownCluster(f"no monitored cluster {cluster!r}")
            chosen = [found]
        for target in chosen:
            self.queues.send(
                self.queues.names.resync_queue, ResyncRequest(target.id, "manual", audit=audit)
            )
        return [target.id for target in chosen]

    def status(self) -> dict[str, Any]:
        """Per cluster and target: last applied time, counts, last error; per cluster: when
        the last watcher event arrived (`lastWatcherEvent`) and, while a mass removal is
        held back, since when and how many pairs (`heldBack`); queue depths.
        Reads the applied states' summaries (a listing), never the states."""
        clusters: dict[str, dict[str, Any]] = {}
        inventory_error = None
        try:
            for cluster in self.discovery.inventory().clusters:
                clusters[cluster.id.casefold()] = {
                    "id": cluster.id,
                    "name": cluster.name,
                    "tagName": cluster.tag_name,
                    "monitored": True,
                    "targets": [],
                }
        except AksfwError as error:
            inventory_error = str(error)
        summaries, watcher_events, holds = self.state.summaries_watcher_events_and_holds()
        for listed in summaries:
            summary = listed.summary
            entry = clusters.setdefault(
                summary.cluster_id.casefold(),
                {
                    "id": summary.cluster_id,
                    "tagName": summary.tag_name,
                    "monitored": False,
                    "targets": [],
                },
            )
            entry["targets"].append(
                {
                    "target": summary.target,
                    "lastApplied": _iso(summary.applied_at),
                    "version": summary.version,
                    "ips": summary.ips,
                    "tags": summary.tags,
                    "lastError": summary.last_error,
                    "lastErrorAt": _iso(summary.last_error_at),
                    "missingSince": _iso(summary.missing_since),
                }
            )
        for entry in clusters.values():
            entry["lastWatcherEvent"] = _iso(watcher_events.get(_cluster_key_of(entry["id"])))
            held = holds.get(_cluster_key_of(entry["id"]))
            if held is not None:  # a mass removal waits for its confirming list
                entry["heldBack"] = {
                    "since": _iso(held.since),
                    "pairsToRemove": held.pairs_to_remove,
                }
        queues = {name: self.queues.depth(name) for name in self.queues.names.queues}
        self.telemetry.queue_depths(queues)
        return {
            "clusters": list(clusters.values()),
            "queues": queues,
            "inventoryError": inventory_error,
            "uninstallingUntil": _iso(self.uninstall_held_until()),
        }

    # ------------------------------------------------------------------ helpers

    def tombstone(self, cluster_id: str, reason: str) -> None:
        """Queue the removal of every tag aksfw applied for a cluster, on every target
        (from a listing of that cluster's summaries)."""
        for listed in self.state.summaries(cluster_id):
            self._tombstone_target(listed.summary, reason)

    def _tombstone_target(self, summary: StateSummary, reason: str) -> None:
        tombstone = Snapshot(
            summary.cluster_id, summary.tag_name, summary.target, time.time_ns(), tombstone=True
        )
        self.queues.send(self.queues.names.updates_queue, tombstone)
        log_event(
            log,
            "tombstone.queued",
            cluster=summary.cluster_id,
            target=summary.target,
            reason=reason,
        )

    def _missing_long_enough(self, listed: ListedSummary) -> bool:
        """A cluster that drops out of the inventory keeps its tags for a grace period, so
        a discovery tag typo or a flapping Resource Manager answer cannot empty the DAGs
        at once; a cluster deletion event removes them without waiting."""
        now = self.clock()
        summary = listed.summary
        if summary.missing_since is None:
            if self.state.mark_missing(listed, now):
                log_event(
                    log,
                    "cluster.unmonitored",
                    logging.WARNING,
                    cluster=summary.cluster_id,
                    target=summary.target,
                    grace_s=self.settings.limits.unmonitored_grace_s,
                )
            return False
        return now - summary.missing_since >= self.settings.limits.unmonitored_grace_s

    def _record_queue_depths(self) -> None:
        """The queues' depths for `aksfw.queue.depth`, once per timer run; a failure to
        read them is logged and does not fail the run."""
        try:
            depths = {name: self.queues.depth(name) for name in self.queues.names.queues}
        except AksfwError as error:
            log_event(log, "timer.queue_depths_unread", logging.WARNING, error=str(error))
            return
        self.telemetry.queue_depths(depths)

    def _follow_up(self, cluster_id: str) -> None:
        """One delayed resync per cluster and delay window, however many events arrive on
        however many instances."""
        delay = self.settings.resync.follow_up_delay_s
        if delay <= 0 or not self.coordination.claim(f"follow-up/{cluster_key(cluster_id)}", delay):
            return
        request = ResyncRequest(cluster_id, "follow-up after an event", follow_up=True)
        self.queues.send(self.queues.names.resync_queue, request, delay_s=delay)

    def _note_watcher_event(self, cluster_id: str) -> None:
        """Record for `status` when a watcher event arrived: one write per cluster and
        window across every instance, however many events a watcher sends."""
        window = max(self.settings.limits.event_resync_window_s, 1.0)
        now = self.clock()
        if self.coordination.claim(f"watcher/{cluster_key(cluster_id)}", window, now=now):
            self.state.note_watcher_event(cluster_id, now)

    def _audit_due(self) -> bool:
        """Whether this timer run audits: once per `limits.audit_interval_s`, across every
        instance."""
        interval = self.settings.limits.audit_interval_s
        return self.coordination.claim("audit", interval, now=self.clock())

    # ------------------------------------------------------------------ operator verbs

    def replay_poisoned(
        self, queue: str | None = None, *, dry_run: bool = False, most: int | None = None
    ) -> ReplayReport:
        """Move the poisoned messages of `queue` (or of both queues) that could succeed
        now back to it; report, and leave in place, those that would fail again
        (`aksfw_core.pipeline.replay`). At most `most` messages are read (default and
        ceiling: `limits.replay_max_messages`).

        Raises:
            InputError: `queue` is not one of the app's queues, or `most` is out of range.
            AksfwError: a poison queue could not be read.
        """
        names = self.queues.names
        known = (names.resync_queue, names.updates_queue)
        if queue is not None and queue not in known:
            raise InputError(f"queue must be {' or '.join(known)}")
        ceiling = self.settings.limits.replay_max_messages
        if most is None:
            most = ceiling
        if not 1 <= most <= ceiling:
            raise InputError(f"max must be 1 to {ceiling} (limits.replayMaxMessages)")
        replay = PoisonReplay(
            self.queues,
            self.applier,
            lambda cluster_id: self.discovery.inventory_knowing(cluster_id).find(cluster_id),
            limits=self.settings.limits,
        )
        return replay.replay([queue] if queue else list(known), most, dry_run=dry_run)

    def uninstall(self, *, dry_run: bool) -> dict[str, Any]:
        """Queue a tombstone for every (cluster, target) aksfw holds applied state for,
        from a listing of the summaries; with `dry_run`, only say what would be queued.

        First holds resyncs back for `UNINSTALL_HOLD_S` on every instance (timer, events,
        `POST /api/resync`, queued resyncs, and snapshots other than tombstones), so that
        nothing registers again behind the tombstones. Calling it again is safe: it
        extends the hold, and a tombstone with nothing left to remove does nothing.

        Raises:
            AksfwError: Storage could not be read or written (nothing, or only part, is
                queued: call it again).
        """
        held_until = None
        if not dry_run:
            held_until = self.clock() + UNINSTALL_HOLD_S
            self.coordination.hold(_UNINSTALL_CLAIM, held_until)
            log_event(log, "uninstall.started", logging.WARNING, until=_iso(held_until))
        summaries = [listed.summary for listed in self.state.summaries()]
        for summary in summaries if not dry_run else ():
            self._tombstone_target(summary, "uninstall")
        return {
            "dryRun": dry_run,
            "heldUntil": _iso(held_until),
            "targets": [
                {
                    "cluster": summary.cluster_id,
                    "tagName": summary.tag_name,
                    "target": summary.target,
                    "ips": summary.ips,
                    "tags": summary.tags,
                }
                for summary in summaries
            ],
            "totals": {
                "clusters": len({summary.cluster_id.casefold() for summary in summaries}),
                "targets": len(summaries),
                "ips": sum(summary.ips for summary in summaries),
                "tags": sum(summary.tags for summary in summaries),
            },
        }

    def uninstall_held_until(self) -> float | None:
        """Until when an uninstall holds resyncs back (epoch seconds), or None.

        Raises:
            AksfwError: Storage could not be read.
        """
        return self.coordination.held_until(_UNINSTALL_CLAIM, now=self.clock())


def _find(inventory: Inventory, wanted: str) -> MonitoredCluster | None:
    by_id = inventory.find(wanted)
    if by_id is not None:
        return by_id
    matches = [c for c in inventory.clusters if wanted in (c.name, c.tag_name)]
    return matches[0] if len(matches) == 1 else None


def _cluster_key_of(cluster_id: str) -> str:
    """`cluster_key`, or "" for an ID that is not a managed cluster's (matches nothing)."""
    try:
        return cluster_key(cluster_id)
    except InputError:
        return ""


def _iso(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
