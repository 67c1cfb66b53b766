"""The operator verbs behind `GET /api/status`, `POST /api/replay` and
`POST /api/uninstall` (and `aksfw status`, `replay`, `uninstall [--cancel]`, which call them
over HTTP).
Each reads listings (the applied states' summaries), never the states themselves.
"""

from __future__ import annotations

import logging

from aksfw_core.app.engine import Engine
from aksfw_core.app.reports import CancelReport, ClusterStatus, StatusReport, UninstallReport
from aksfw_core.app.tombstones import Tombstones
from aksfw_core.app.uninstall_gate import iso, note_text
from aksfw_core.errors import AksfwError, InputError
from aksfw_core.logs import log_event
from aksfw_core.pipeline.replay import PoisonReplay, ReplayReport
from aksfw_core.pipeline.state import cluster_key

log = logging.getLogger(__name__)


def replay_limit(most: int | None, ceiling: int) -> int:
    """How many poisoned messages a replay reads: `most`, by default the ceiling.

    Raises:
        InputError: `most` is not 1 to `ceiling`.
    """
    chosen = ceiling if most is None else most
    if not 1 <= chosen <= ceiling:
        raise InputError(f"max must be 1 to {ceiling} (limits.replayMaxMessages)")
    return chosen


class Operations:
    """Status, replay and uninstall on one process's engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._tombstones = Tombstones(engine)

    def status(self) -> StatusReport:
        """Per cluster and target: last applied time, counts, last error; per cluster: when
        the last watcher event arrived and, while a mass removal is held back, since when
        and how many pairs; per target, its canary (last check, registration, amnesia,
        error); queue depths; whether an uninstall pauses work (read now, with since when
        and by whom).

        Raises:
            AksfwError: Storage could not be read (an unreadable inventory is reported).
        """
        engine = self._engine
        clusters: dict[str, ClusterStatus] = {}
        inventory_error = None
        try:
            for cluster in engine.discovery.inventory().clusters:
                clusters[cluster.id.casefold()] = ClusterStatus(
                    cluster.id, cluster.tag_name, monitored=True, name=cluster.name
                )
        except AksfwError as error:
            inventory_error = str(error)
        summaries, watcher_events, holds = engine.store.summaries_watcher_events_and_holds()
        for listed in summaries:
            summary = listed.summary
            entry = clusters.setdefault(
                summary.cluster_id.casefold(),
                ClusterStatus(summary.cluster_id, summary.tag_name, monitored=False),
            )
            entry.targets.append(summary)
        for entry in clusters.values():
            key = _cluster_key_of(entry.id)
            entry.last_watcher_event = watcher_events.get(key)
            entry.held_back = holds.get(key)
        queues = {name: engine.queues.depth(name) for name in engine.queues.names.queues}
        engine.telemetry.queue_depths(queues)
        return StatusReport(
            list(clusters.values()),
            queues,
            inventory_error,
            engine.gate.current(),
            engine.canaries.records(),
        )

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
        engine = self._engine
        names = engine.queues.names
        known = (names.resync_queue, names.updates_queue)
        if queue is not None and queue not in known:
            raise InputError(f"queue must be {' or '.join(known)}")
        limit = replay_limit(most, engine.settings.limits.replay_max_messages)
        replay = PoisonReplay(
            engine.queues,
            engine.applier,
            lambda cluster_id: engine.discovery.inventory_knowing(cluster_id).find(cluster_id),
            limits=engine.settings.limits,
        )
        return replay.replay([queue] if queue else list(known), limit, dry_run=dry_run)

    def uninstall(self, *, dry_run: bool, by: str = "unknown") -> UninstallReport:
        """Queue a tombstone for every (cluster, target) aksfw holds applied state for,
        from a listing of the summaries, and unregister every target's canary (one that
        cannot be reached expires by itself); with `dry_run`, only say what would be done.

        First pauses work on every instance (`UninstallGate`: timer, events,
        `POST /api/resync`, queued resyncs, and snapshots other than tombstones), so that
        nothing registers again behind the tombstones; the pause keeps `by` (who asked,
        as the request said) and since when, and `uninstall.started` logs them. Calling it
        again is safe: it extends the pause, and a tombstone with nothing left to remove
        does nothing. `cancel_uninstall` ends the pause early.

        Raises:
            AksfwError: Storage could not be read or written (nothing, or only part, is
                queued: call it again).
        """
        engine = self._engine
        pause = None
        if not dry_run:
            pause = engine.gate.pause(by)
            log_event(
                log,
                "uninstall.started",
                logging.WARNING,
                by=pause.by,
                at=iso(pause.since),
                until=iso(pause.until),
            )
        summaries = [listed.summary for listed in engine.store.summaries()]
        for summary in summaries if not dry_run else ():
            self._tombstones.target(summary, "uninstall")
        # The timer is paused now: nothing registers the canaries again.
        canaries = engine.canaries.remove(dry_run=dry_run)
        return UninstallReport(dry_run, pause, summaries, canaries)

    def cancel_uninstall(self, *, by: str = "unknown") -> CancelReport:
        """End an uninstall's pause now: resyncs, events and the timer go on again, at
        once on this instance and within a minute on every other (`UninstallGate.cancel`).
        Tombstones already queued still remove their tags; the next resync registers them
        again. Logs `uninstall.cancelled` with who and when; cancelling when nothing is
        paused does nothing and says so.

        Raises:
            AksfwError: Storage could not be read or written (call it again).
        """
        engine = self._engine
        at = engine.clock()
        by = note_text(by)
        cancelled = engine.gate.cancel(by)
        report = CancelReport(cancelled, by, at)
        if cancelled is not None:
            log_event(
                log,
                "uninstall.cancelled",
                logging.WARNING,
                by=by,
                at=iso(at),
                was_until=iso(cancelled.until),
                started_by=cancelled.by,
                started_at=iso(cancelled.since),
            )
        else:
            log_event(log, "uninstall.cancel_idle", by=by, at=iso(at))
        return report


def _cluster_key_of(cluster_id: str) -> str:
    """`cluster_key`, or "" for an ID that is not a managed cluster's (matches nothing)."""
    try:
        return cluster_key(cluster_id)
    except InputError:
        return ""
