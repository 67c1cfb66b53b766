"""Apply a snapshot to its target: diff against the last applied state (or, for an audit,
a first apply or after refused entries, against what Panorama really holds), register and
unregister in batches, save the new state under an ETag condition. What the target holds
comes from one read of its table shared by every cluster on it (`pipeline.shared_tables`).

Applying the same snapshot twice, or two snapshots in either order, ends in the newest
state: an older snapshot than the applied one is skipped, and every write is idempotent.

A snapshot is data, not authority: before anything is written it passes
`snapshot_guard`'s checks, or is refused as malformed and touches nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace

from aksfw_core.errors import AksfwError, Retryable
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.panorama.audit import compare
from aksfw_core.panorama.client import ApplyResult, PanoramaClient
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.decisions import last_write, stale
from aksfw_core.pipeline.shared_tables import SharedTables
from aksfw_core.pipeline.snapshot_guard import (
    ClusterLookup,
    SnapshotGuard,
    check_snapshot,
)
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.pipeline.state_store import StateConflict, StateStore
from aksfw_core.rules.messages import (
    Snapshot,
)
from aksfw_core.rules.model import IpTags
from aksfw_core.rules.outcome import ApplyOutcome, Outcome
from aksfw_core.rules.plan import TagPlan, plan_changes
from aksfw_core.rules.tags import ownership

log = logging.getLogger(__name__)

ApplyLock = Callable[[str, str], AbstractContextManager[object]]
"""Holds a (cluster, target) for one applier at a time (`Coordination.apply_lock`)."""

_ANY_TAG = re.compile("")  # the saved state holds only the cluster's own tags


class Applier:
    """Applies snapshots from the `panorama-updates` queue."""

    def __init__(
        self,
        store: StateStore,
        panorama_for: Callable[[str], PanoramaClient],
        *,
        clusters: ClusterLookup,
        targets: TargetResolver,
        lock: ApplyLock | None = None,
        max_version_skew_s: float = Limits.max_version_skew_s,
        clock: Callable[[], float] = time.time,
        tables: SharedTables | None = None,
    ) -> None:
        """`tables`: the targets' shared reads (None: each comparison reads the target)."""
        self._lock = lock or (lambda cluster_id, target: nullcontext())
        self._tables = tables
        self._store = store
        self._panorama_for = panorama_for
        self._guard = SnapshotGuard(
            clusters, targets, max_version_skew_s=max_version_skew_s, clock=clock
        )
        self._clock = clock

    def apply(self, snapshot: Snapshot) -> ApplyOutcome:
        """Make the target hold the snapshot's tags for its cluster.

        Raises:
            MalformedMessage: the snapshot names tags the cluster does not own, a cluster,
                tag name or target it may not touch, or a version too far in the future;
                nothing is written.
            Retryable: Panorama, Storage or the inventory failed transiently (state
                untouched).
            AuthError, NonRetryable: it can never succeed as it is.
        """
        check_snapshot(snapshot)
        self._guard.check_version(snapshot)
        with self._lock(snapshot.cluster_id, snapshot.target):
            return self._apply_alone(snapshot)

    def _apply_alone(self, snapshot: Snapshot) -> ApplyOutcome:
        """`apply`, while no other applier works on the same (cluster, target)."""
        mark = self._store.enqueued_mark(snapshot.cluster_id, snapshot.target)
        if mark is not None and mark.version > snapshot.version:
            # A newer snapshot is on its way: applying this one first is wasted work.
            return self._skip(snapshot, Outcome.SUPERSEDED_IN_QUEUE)
        state, etag = self._store.load_applied(snapshot.cluster_id, snapshot.target)
        if snapshot.tombstone and state is None:
            # Only aksfw's own record says what a cluster owns on a target: without it
            # there is nothing a tombstone may remove.
            return self._skip(snapshot, Outcome.NOTHING_APPLIED)
        self._guard.check(snapshot, state)
        trusted = state is not None and self._guard.trusted(state)
        older_or_same = stale(snapshot.version, snapshot.fingerprint, state, trusted=trusted)
        if older_or_same is not None:
            return self._skip(snapshot, older_or_same)
        started = self._clock()
        try:
            with self._panorama_for(snapshot.target) as panorama:
                plan = self._plan(snapshot, state if trusted else None, state, panorama)
                result = panorama.apply(plan) if not plan.is_empty else ApplyResult()
        except AksfwError as error:
            self._record_error(snapshot, state, etag, error)
            raise
        try:
            outcome = self._save(snapshot, etag, plan, result)
        except StateConflict:
            outcome = self._settle_race(snapshot)
        log_event(
            log,
            "apply.snapshot",
            cluster=snapshot.cluster_id,
            target=snapshot.target,
            outcome=outcome,
            ips=len(snapshot.tags),
            registered=plan.register_count,
            unregistered=plan.unregister_count,
            requests=result.requests,
            failures=len(result.failures),
            duration_ms=round((self._clock() - started) * 1000),
        )
        kept: int | None = sum(map(len, snapshot.tags.values()))
        if outcome not in (Outcome.APPLIED, Outcome.UNCHANGED):  # a race's winner may hold others
            kept = 0 if outcome is Outcome.TOMBSTONED else None
        return ApplyOutcome(outcome, result.registered, result.unregistered, kept)

    def _plan(
        self,
        snapshot: Snapshot,
        base: AppliedState | None,
        state: AppliedState | None,
        panorama: PanoramaClient,
        wrote_at: float | None = None,
    ) -> TagPlan:
        """Diff against `base` (the trusted applied state) when it can be trusted to
        match Panorama; otherwise against Panorama itself, counting the tags of `state`
        (whatever its version) as this cluster's own. `wrote_at`: this applier wrote to
        the target (unsaved) until then."""
        refresh = panorama.settings.tag_timeout_s > 0
        if base is not None and not base.dirty and not snapshot.audit:
            return plan_changes(snapshot.tags, base.tags, _ANY_TAG, refresh)
        owned = ownership(snapshot.tag_name)
        if state is None or state.tag_name == snapshot.tag_name:
            table = self._registered(snapshot, state, panorama, [snapshot.tag_name], wrote_at)
            return compare(table, snapshot.tags, owned, refresh=refresh).plan
        # The alias changed: the old name's tags are still this cluster's to remove.
        either = re.compile(f"{owned.pattern}|{ownership(state.tag_name).pattern}")
        names = [snapshot.tag_name, state.tag_name]
        table = self._registered(snapshot, state, panorama, names, wrote_at)
        return compare(table, snapshot.tags, either, also_owned=state.tags, refresh=refresh).plan

    def _registered(
        self,
        snapshot: Snapshot,
        state: AppliedState | None,
        panorama: PanoramaClient,
        names: list[str],
        wrote_at: float | None,
    ) -> IpTags:
        """What the target holds of the clusters of tag names `names`: from the target's
        shared read when one serves (`decisions.table_since`: read after this cluster's
        last write there, and since the snapshot's audit or repair began), else read."""
        if self._tables is None:
            return panorama.registered()
        written = [at for at in (last_write(state), wrote_at) if at is not None]
        table = self._tables.table(
            snapshot.target,
            panorama.registered,
            compare_since=snapshot.compare_since,
            wrote_at=max(written, default=None),
        )
        return table.of(names)

    def _save(
        self, snapshot: Snapshot, etag: str | None, plan: TagPlan, result: ApplyResult
    ) -> Outcome:
        if snapshot.tombstone and not result.failures:
            self._store.delete_applied(snapshot.cluster_id, snapshot.target, etag)
            return Outcome.TOMBSTONED
        error = _failures_text(result) if result.failures else None
        self._store.save_applied(
            AppliedState(
                cluster_id=snapshot.cluster_id,
                tag_name=snapshot.tag_name,
                target=snapshot.target,
                # Not max(...): either the snapshot passed the ordering check, or the saved
                # version was too far ahead to be trusted and must not survive.
                version=snapshot.version,
                fingerprint=snapshot.fingerprint,
                tags=snapshot.tags,
                applied_at=self._clock(),
                dirty=bool(result.failures),
                last_error=error,
                last_error_at=self._clock() if error else None,
            ),
            etag,
        )
        return Outcome.UNCHANGED if plan.is_empty else Outcome.APPLIED

    def _settle_race(self, snapshot: Snapshot) -> Outcome:
        """Another applier saved state while this one wrote to Panorama. If it applied a
        newer snapshot, this one's writes may have undone some of it: make Panorama hold
        the newer state again, compared with what Panorama really has.

        Raises:
            Retryable: the state is not newer (apply this snapshot again from it).
        """
        latest, etag = self._store.load_applied(snapshot.cluster_id, snapshot.target)
        if latest is None or latest.version < snapshot.version or not self._guard.trusted(latest):
            raise Retryable("applied state changed concurrently; trying again")
        newer = Snapshot(
            latest.cluster_id,
            latest.tag_name,
            latest.target,
            latest.version,
            latest.tags,
            audit=True,
        )
        with self._panorama_for(snapshot.target) as panorama:
            # This applier's own writes are not in `latest`: only a read that began after
            # them shows what the target holds now.
            plan = self._plan(newer, latest, latest, panorama, wrote_at=self._clock())
            result = panorama.apply(plan) if not plan.is_empty else ApplyResult()
        self._save(newer, etag, plan, result)
        log_event(
            log,
            "apply.race_settled",
            logging.WARNING,
            cluster=snapshot.cluster_id,
            target=snapshot.target,
            repaired=plan.register_count + plan.unregister_count,
        )
        return Outcome.SUPERSEDED

    def _record_error(
        self, snapshot: Snapshot, state: AppliedState | None, etag: str | None, error: Exception
    ) -> None:
        """Note the error for the status endpoint; the next apply then audits Panorama."""
        base = state or AppliedState(
            cluster_id=snapshot.cluster_id,
            tag_name=snapshot.tag_name,
            target=snapshot.target,
            version=0,
            fingerprint="",
        )
        noted = replace(
            base,
            dirty=True,
            last_error=str(error),
            last_error_at=self._clock(),
        )
        try:
            self._store.save_applied(noted, etag)
        except AksfwError as failure:
            log_event(log, "apply.error_not_recorded", logging.WARNING, error=str(failure))

    def _skip(self, snapshot: Snapshot, outcome: Outcome) -> ApplyOutcome:
        log_event(
            log,
            "apply.skipped",
            cluster=snapshot.cluster_id,
            target=snapshot.target,
            outcome=outcome,
        )
        return ApplyOutcome(outcome)

    def check(self, snapshot: Snapshot) -> None:
        """Refuse a snapshot as `apply` would, before it takes its lock: reads the applied
        state and the inventory, writes nothing (a poison-queue replay's check).

        Raises:
            MalformedMessage: `apply` would refuse it (`UnknownSnapshotCluster`: its
                cluster is not monitored and has no applied state on that target).
            Retryable, AuthError, NonRetryable: the state, the inventory or Panorama's
                device-group list could not be read.
        """
        check_snapshot(snapshot)
        self._guard.check_version(snapshot)
        state, _ = self._store.load_applied(snapshot.cluster_id, snapshot.target)
        self._guard.check(snapshot, state)


def _failures_text(result: ApplyResult) -> str:
    first = result.failures[0]
    more = f" (and {len(result.failures) - 1} more)" if len(result.failures) > 1 else ""
    return f"Panorama refused {first.action} {first.ip}: {first.message}{more}"
