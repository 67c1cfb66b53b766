"""The operator verbs behind `GET /api/status`, `POST /api/replay` and
`POST /api/uninstall` (and `aksfw status`, `replay`, `uninstall`, which call them over HTTP).
Each reads listings (the applied states' summaries), never the states themselves.
"""

from __future__ import annotations

import logging

from aksfw_core.app.engine import Engine
from aksfw_core.app.reports import ClusterStatus, StatusReport, UninstallReport
from aksfw_core.app.tombstones import Tombstones
from aksfw_core.app.uninstall_gate import iso
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
        and how many pairs; queue depths; whether an uninstall pauses work.

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
            list(clusters.values()), queues, inventory_error, engine.gate.paused_until()
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

    def uninstall(self, *, dry_run: bool) -> UninstallReport:
        """Queue a tombstone for every (cluster, target) aksfw holds applied state for,
        from a listing of the summaries; with `dry_run`, only say what would be queued.

        First pauses work on every instance (`UninstallGate`: timer, events,
        `POST /api/resync`, queued resyncs, and snapshots other than tombstones), so that
        nothing registers again behind the tombstones. Calling it again is safe: it
        extends the pause, and a tombstone with nothing left to remove does nothing.

        Raises:
            AksfwError: Storage could not be read or written (nothing, or only part, is
                queued: call it again).
        """
        engine = self._engine
        paused_until = None
        if not dry_run:
            paused_until = engine.gate.pause()
            log_event(log, "uninstall.started", logging.WARNING, until=iso(paused_until))
        summaries = [listed.summary for listed in engine.store.summaries()]
        for summary in summaries if not dry_run else ():
            self._tombstones.target(summary, "uninstall")
        return UninstallReport(dry_run, paused_until, summaries)


def _cluster_key_of(cluster_id: str) -> str:
    """`cluster_key`, or "" for an ID that is not a managed cluster's (matches nothing)."""
    try:
        return cluster_key(cluster_id)
    except InputError:
        return ""
