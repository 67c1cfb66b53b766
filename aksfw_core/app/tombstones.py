"""Tombstones: the removal of every tag aksfw applied for a cluster on a target, queued
when the cluster is deleted, has left the inventory for the grace period, or on uninstall.
What to remove is aksfw's own record (the applied states' summaries), never the message.
"""

from __future__ import annotations

import logging
from enum import Enum

from aksfw_core.app.engine import Engine
from aksfw_core.logs import log_event
from aksfw_core.pipeline.state import StateSummary
from aksfw_core.pipeline.state_store import ListedSummary
from aksfw_core.rules.messages import Snapshot

log = logging.getLogger(__name__)


class Unmonitored(Enum):
    """What the timer does with a (cluster, target) whose cluster left the inventory."""

    MARK = "mark"
    """First seen missing: note since when, remove nothing yet."""
    WAIT = "wait"
    """Missing for less than the grace period."""
    TOMBSTONE = "tombstone"
    """Missing for the whole grace period: remove its tags."""


def unmonitored_step(missing_since: float | None, now: float, grace_s: float) -> Unmonitored:
    """A cluster that drops out of the inventory keeps its tags for `grace_s`, so a
    discovery tag typo or a flapping Resource Manager answer cannot empty the DAGs at once
    (a cluster deletion event removes them without waiting)."""
    if missing_since is None:
        return Unmonitored.MARK
    return Unmonitored.TOMBSTONE if now - missing_since >= grace_s else Unmonitored.WAIT


class Tombstones:
    """Queues tombstones from the applied states' summaries."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def cluster(self, cluster_id: str, reason: str) -> None:
        """Every target of one cluster (from a listing of that cluster's summaries).

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        for listed in self._engine.store.summaries(cluster_id):
            self.target(listed.summary, reason)

    def target(self, summary: StateSummary, reason: str) -> None:
        """One (cluster, target).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        engine = self._engine
        tombstone = Snapshot(
            summary.cluster_id, summary.tag_name, summary.target, engine.version(), tombstone=True
        )
        engine.queues.send(tombstone)
        log_event(
            log,
            "tombstone.queued",
            cluster=summary.cluster_id,
            target=summary.target,
            reason=reason,
        )

    def unmonitored(self, gone: list[ListedSummary]) -> int:
        """Step the grace period of each (cluster, target) whose cluster left the inventory;
        tombstone those past it. Returns how many were tombstoned.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        engine = self._engine
        grace_s = engine.settings.limits.unmonitored_grace_s
        now = engine.clock()
        tombstoned = 0
        for listed in gone:
            summary = listed.summary
            step = unmonitored_step(summary.missing_since, now, grace_s)
            if step is Unmonitored.MARK and engine.store.mark_missing(listed, now):
                log_event(
                    log,
                    "cluster.unmonitored",
                    logging.WARNING,
                    cluster=summary.cluster_id,
                    target=summary.target,
                    grace_s=grace_s,
                )
            elif step is Unmonitored.TOMBSTONE:
                self.target(summary, "no longer monitored")
                tombstoned += 1
        return tombstoned
