"""What each trigger does: an Event Grid event, the timer, the two queues and a manual
resync (`POST /api/resync`). `aksfw_core.functions` adapts the Functions host's inputs to
these calls; every one asks the uninstall gate first.
"""

from __future__ import annotations

import logging
import math

from aksfw_core.app.engine import Engine
from aksfw_core.app.tombstones import Tombstones
from aksfw_core.app.uninstall_gate import Work
from aksfw_core.azure.events import WATCHER_CHANGE, ChangeKind, Resolution, read_event, resolve
from aksfw_core.azure.inventory import Inventory, MonitoredCluster
from aksfw_core.errors import AksfwError, InputError
from aksfw_core.logs import log_event
from aksfw_core.pipeline.list_budget import Decision, Step
from aksfw_core.pipeline.list_budgets import Begun
from aksfw_core.pipeline.state import cluster_key
from aksfw_core.rules.messages import MalformedMessage, ResyncRequest, Snapshot, TraceContext
from aksfw_core.rules.outcome import ApplyOutcome, Outcome

log = logging.getLogger(__name__)


class UnknownCluster(InputError):
    """A manual resync named a cluster that is not monitored."""


QUEUED = (Step.LIST_NOW, Step.LIST_AT)
"""The steps of a list budget that queue a list."""

WATCHER_NOTE_S = 5.0
"""Seconds between two writes of when a cluster's last watcher event arrived (`status`)."""


class Triggers:
    """The triggers of one process's engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._tombstones = Tombstones(engine)

    def on_event(self, document: object, origin_time: float | None = None) -> Resolution:
        """Event Grid: queue a resync of the affected clusters now, and once more a little
        later. `origin_time` is the event's time (the lag is measured from it).

        Raises:
            MalformedEvent: the event cannot be read (log it and drop it).
            AksfwError: the inventory could not be read (Event Grid redelivers).
        """
        engine = self._engine
        event = read_event(document)
        resolution = resolve(event, engine.discovery.inventory())
        if resolution.unknown_cluster:
            inventory = engine.discovery.inventory_knowing(resolution.unknown_cluster)
            resolution = resolve(event, inventory)
        for change in resolution.clusters:
            if change.kind is ChangeKind.TOMBSTONE:
                self._tombstones.cluster(change.id, change.reason)
                engine.discovery.forget(change.id)  # the cached inventory may still list it
                continue
            if not engine.gate.admits(Work.EVENT_RESYNC, cluster=change.id, event_id=event.id):
                continue
            decision = engine.budgets.change(change.id)
            if decision.step in QUEUED:
                # Enqueue only: Event Grid waits 30 s for an answer, and a cold start plus a
                # Kubernetes list could pass that and bring the event again. The list runs in
                # the cluster-resync function, with the queue's retries.
                reason = f"event {event.type}: {change.reason}"
                queue_list(engine, change.id, decision, reason, origin_time)
            else:
                # A list queued, or one more after the list in flight (on any instance),
                # covers this change.
                log_event(
                    log,
                    "event.coalesced",
                    cluster=change.id,
                    event_id=event.id,
                    step=decision.step.value,
                )
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
        delete old payload blobs; then check every target's canary, and resync at once the
        clusters of a target that lost its registrations (`pipeline.canaries`: after the
        fan-out, so a slow Panorama never delays it). Reads the applied states' summaries,
        never the states.

        Raises:
            AksfwError: Azure could not be read; nothing is tombstoned.
        """
        engine = self._engine
        if not engine.gate.admits(Work.TIMER_FAN_OUT):
            return
        inventory = engine.discovery.refresh()
        # Once per `limits.audit_interval_s`, across every instance.
        limits = engine.settings.limits
        audit = engine.coordination.claim("audit", limits.audit_interval_s)
        started = engine.clock()
        since = started if audit else None  # an audit's comparisons share reads made since
        engine.queues.send_all(
            [
                ResyncRequest(cluster.id, "timer", audit=audit, compare_since=since)
                for cluster in inventory.clusters
            ],
            limits.timer_max_concurrent_messages,
        )
        sent_ms = round((engine.clock() - started) * 1000)
        monitored = {cluster.id.casefold() for cluster in inventory.clusters}
        gone = [
            listed
            for listed in engine.store.summaries()
            if listed.summary.cluster_id.casefold() not in monitored
        ]
        tombstoned = self._tombstones.unmonitored(gone)
        payloads = engine.queues.delete_old_payloads(engine.clock())
        log_event(
            log,
            "timer.fanned_out",
            clusters=len(inventory.clusters),
            sent_ms=sent_ms,
            unmonitored=len(gone),
            tombstoned=tombstoned,
            payloads_deleted=payloads,
            audit=audit,
        )
        self._record_queue_depths()
        engine.canaries.check()

    def on_resync_message(
        self, body: str | bytes, invocation: TraceContext | None = None
    ) -> list[Snapshot]:
        """`cluster-resync` queue: resync one cluster, in the trace the message carries
        (else the host's `invocation`).

        Raises:
            MalformedMessage: not a resync request (poison it).
            AksfwError: as `Resyncer.resync`.
        """
        engine = self._engine
        with engine.telemetry.failures("resync"):
            request = engine.queues.receive(body)
            if not isinstance(request, ResyncRequest):
                raise MalformedMessage("message: expected a resync request on the resync queue")
            if not engine.gate.admits(
                Work.RESYNC, cluster=request.cluster_id, reason=request.reason
            ):
                return []
            follow_up_of = (request.origin_time or 0.0) if request.follow_up else None
            begun = engine.budgets.begin(request.cluster_id, follow_up_of)
        if not begun.lists:  # a follow-up that a list queued or in flight covers
            step = None if begun.decision is None else begun.decision.step.value
            log_event(log, "resync.coalesced", cluster=request.cluster_id, step=step)
            return []
        with engine.telemetry.activity(
            "aksfw.resync",
            "resync",
            parent=request.trace,
            invocation=invocation,
            cluster=request.cluster_id,
        ):
            try:
                snapshots = engine.resyncer.resync(request)
            except Exception:
                end_list(engine, request.cluster_id, begun, listed=False)
                raise
            # A failure here fails the message: its next delivery lists once more.
            end_list(engine, request.cluster_id, begun, listed=True)
            return snapshots

    def on_update_message(
        self, body: str | bytes, invocation: TraceContext | None = None
    ) -> ApplyOutcome:
        """`panorama-updates` queue: apply one snapshot, in the trace the message carries
        (else the host's `invocation`).

        Raises:
            MalformedMessage: not a valid snapshot (poison it).
            AksfwError: as `Applier.apply`.
        """
        engine = self._engine
        with engine.telemetry.failures("apply"):
            snapshot = engine.queues.receive(body)
            if not isinstance(snapshot, Snapshot):
                raise MalformedMessage("message: expected a snapshot on the updates queue")
            # A snapshot listed before an uninstall would register its tags again after the
            # tombstone removed them: while uninstalling only tombstones apply.
            work = Work.TOMBSTONE if snapshot.tombstone else Work.SNAPSHOT
            if not engine.gate.admits(work, cluster=snapshot.cluster_id, target=snapshot.target):
                return ApplyOutcome(Outcome.UNINSTALLING)
        return engine.telemetry.apply(snapshot, engine.applier.apply, invocation)

    def request_resync(self, cluster: str | None, audit: bool = False) -> list[str]:
        """Queue a resync of one cluster (resource ID, name or tag name) or of all.

        Raises:
            UnknownCluster: no monitored cluster has that ID or name.
            Uninstalling: an uninstall pauses resyncs.
            AksfwError: the inventory could not be read.
        """
        engine = self._engine
        engine.gate.refuse_while_paused()
        inventory = engine.discovery.inventory()
        if cluster is None:
            chosen = list(inventory.clusters)
        else:
            found = find_cluster(inventory, cluster) or find_cluster(
                engine.discovery.inventory_knowing(cluster), cluster
            )
            if found is None:
                raise UnknownCluster(f"no monitored cluster {cluster!r}")
            chosen = [found]
        since = engine.clock() if audit else None  # one read per target for the audit
        for target in chosen:
            request = ResyncRequest(target.id, "manual", audit=audit, compare_since=since)
            engine.queues.send(request)
        return [target.id for target in chosen]

    def _record_queue_depths(self) -> None:
        """The queues' depths for `aksfw.queue.depth`, once per timer run; a failure to
        read them is logged and does not fail the run."""
        queues = self._engine.queues
        try:
            depths = {name: queues.depth(name) for name in queues.names.queues}
        except AksfwError as error:
            log_event(log, "timer.queue_depths_unread", logging.WARNING, error=str(error))
            return
        self._engine.telemetry.queue_depths(depths)

    def _follow_up(self, cluster_id: str) -> None:
        """One delayed resync per cluster and delay window, however many events arrive on
        however many instances."""
        engine = self._engine
        delay = engine.settings.resync.follow_up_delay_s
        if delay <= 0 or not engine.coordination.claim(
            f"follow-up/{cluster_key(cluster_id)}", delay
        ):
            return
        request = ResyncRequest(cluster_id, "follow-up after an event", follow_up=True)
        engine.queues.send(request, delay_s=delay)

    def _note_watcher_event(self, cluster_id: str) -> None:
        """Record for `status` when a watcher event arrived: one write per cluster and
        window across every instance, however many events a watcher sends."""
        engine = self._engine
        now = engine.clock()
        key = f"watcher/{cluster_key(cluster_id)}"
        if engine.coordination.claim(key, WATCHER_NOTE_S, now=now):
            engine.store.note_watcher_event(cluster_id, now)


def queue_list(
    engine: Engine,
    cluster_id: str,
    decision: Decision,
    reason: str,
    origin_time: float | None = None,
) -> None:
    """Queue the resync a list budget's `decision` asks for: at once, or delayed until its
    slot; nothing for any other step. A send that fails gives the list back to the budget.

    Raises:
        AuthError, Retryable, NonRetryable: Storage failed.
    """
    if decision.step not in QUEUED:
        return
    delay_s = 0
    if decision.step is Step.LIST_AT and decision.due is not None:
        delay_s = max(1, math.ceil(decision.due - engine.clock()))  # never before its slot
    request = ResyncRequest(cluster_id, reason, origin_time=origin_time)
    try:
        engine.queues.send(request, delay_s=delay_s)
    except AksfwError:
        engine.budgets.withdraw(cluster_id, decision)
        raise


def end_list(engine: Engine, cluster_id: str, begun: Begun, *, listed: bool) -> None:
    """A resync's list ended: queue the one more list that changes during it asked for.
    After a failed list (`listed` False: the message is tried again, which lists once
    more) only the record is cleared, and a failure to clear it is logged, not raised.

    Raises:
        AuthError, Retryable, NonRetryable: Storage failed after a list that succeeded.
    """
    try:
        after = engine.budgets.end(cluster_id, begun, listed)
    except AksfwError as error:
        if listed:
            raise
        log_event(
            log, "resync.budget_not_ended", logging.WARNING, cluster=cluster_id, error=str(error)
        )
        return
    if after.step in QUEUED:
        log_event(log, "resync.one_more", cluster=cluster_id, step=after.step.value, due=after.due)
    queue_list(engine, cluster_id, after, "changes during the last list", after.origin)


def find_cluster(inventory: Inventory, wanted: str) -> MonitoredCluster | None:
    """The cluster with that resource ID, else the one cluster with that name or tag name."""
    by_id = inventory.find(wanted)
    if by_id is not None:
        return by_id
    matches = [c for c in inventory.clusters if wanted in (c.name, c.tag_name)]
    return matches[0] if len(matches) == 1 else None
