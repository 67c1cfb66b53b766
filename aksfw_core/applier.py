"""Apply a snapshot to its target: diff against the last applied state (or, for an audit,
a first apply or after refused entries, against what Panorama really holds), register and
unregister in batches, save the new state under an ETag condition.

Applying the same snapshot twice, or two snapshots in either order, ends in the newest
state: an older snapshot than the applied one is skipped, and every write is idempotent.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aksfw_core.errors import AksfwError, InputError, Retryable
from aksfw_core.logs import log_event
from aksfw_core.messages import PANORAMA_TARGET, MalformedMessage, Snapshot
from aksfw_core.model import IpTags
from aksfw_core.panorama.client import ApplyResult, PanoramaClient
from aksfw_core.reconcile import TagPlan, owned_only, plan_changes
from aksfw_core.state import AppliedState
from aksfw_core.storage import StateConflict, Storage
from aksfw_core.tags import check_cluster_name, ownership, registrable

log = logging.getLogger(__name__)

_ANY_TAG = re.compile("")  # the saved state holds only the cluster's own tags
_SERIAL_RE = re.compile(r"[0-9A-Za-z]{1,32}")


@dataclass(frozen=True)
class ApplyOutcome:
    """What applying one snapshot did."""

    outcome: str
    """`applied`, `unchanged`, `tombstoned`, `skipped-older`, `duplicate` or `superseded`."""
    result: ApplyResult = field(default_factory=ApplyResult)


class Applier:
    """Applies snapshots from the `panorama-updates` queue."""

    def __init__(
        self,
        storage: Storage,
        panorama_for: Callable[[str], PanoramaClient],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._panorama_for = panorama_for
        self._clock = clock

    def apply(self, snapshot: Snapshot) -> ApplyOutcome:
        """Make the target hold the snapshot's tags for its cluster.

        Raises:
            MalformedMessage: the snapshot names tags the cluster does not own.
            Retryable: Panorama or Storage failed transiently (state untouched).
            AuthError, NonRetryable: it can never succeed as it is.
        """
        check_snapshot(snapshot)
        state, etag = self._storage.load_applied(snapshot.cluster_id, snapshot.target)
        if state is not None:
            if snapshot.version < state.version:
                return self._skip(snapshot, "skipped-older")
            same = snapshot.version == state.version and snapshot.fingerprint == state.fingerprint
            if same and not state.dirty:
                return self._skip(snapshot, "duplicate")
        started = self._clock()
        try:
            with self._panorama_for(snapshot.target) as panorama:
                plan = self._plan(snapshot, state, panorama)
                result = panorama.apply(plan) if not plan.is_empty else ApplyResult()
        except AksfwError as error:
            self._record_error(snapshot, state, etag, error)
            raise
        try:
            outcome = self._save(snapshot, state, etag, plan, result)
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
        return ApplyOutcome(outcome, result)

    def _plan(
        self, snapshot: Snapshot, state: AppliedState | None, panorama: PanoramaClient
    ) -> TagPlan:
        refresh = panorama.settings.tag_timeout_s > 0
        if state is not None and not state.dirty and not snapshot.audit:
            return plan_changes(snapshot.tags, state.tags, _ANY_TAG, refresh)
        owned = ownership(snapshot.tag_name)
        registered = owned_only(panorama.registered(), owned)
        if state is not None and state.tag_name != snapshot.tag_name:
            # The alias changed: the old name's tags are still this cluster's to remove.
            registered = _merge(registered, state.tags)
            owned = re.compile(f"{owned.pattern}|{ownership(state.tag_name).pattern}")
        return plan_changes(snapshot.tags, registered, owned, refresh)

    def _save(
        self,
        snapshot: Snapshot,
        state: AppliedState | None,
        etag: str | None,
        plan: TagPlan,
        result: ApplyResult,
    ) -> str:
        if snapshot.tombstone and not result.failures:
            self._storage.delete_applied(snapshot.cluster_id, snapshot.target, etag)
            return "tombstoned"
        error = _failures_text(result) if result.failures else None
        self._storage.save_applied(
            AppliedState(
                cluster_id=snapshot.cluster_id,
                tag_name=snapshot.tag_name,
                target=snapshot.target,
                version=max(snapshot.version, state.version if state else 0),
                fingerprint=snapshot.fingerprint,
                tags=snapshot.tags,
                applied_at=self._clock(),
                dirty=bool(result.failures),
                last_error=error,
                last_error_at=self._clock() if error else None,
            ),
            etag,
        )
        return "unchanged" if plan.is_empty else "applied"

    def _settle_race(self, snapshot: Snapshot) -> str:
        """Another applier saved state while this one wrote to Panorama. If it applied a
        newer snapshot, this one's writes may have undone some of it: make Panorama hold
        the newer state again, compared with what Panorama really has.

        Raises:
            Retryable: the state is not newer (apply this snapshot again from it).
        """
        latest, etag = self._storage.load_applied(snapshot.cluster_id, snapshot.target)
        if latest is None or latest.version < snapshot.version:
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
            plan = self._plan(newer, latest, panorama)
            result = panorama.apply(plan) if not plan.is_empty else ApplyResult()
        self._save(newer, latest, etag, plan, result)
        log_event(
            log,
            "apply.race_settled",
            logging.WARNING,
            cluster=snapshot.cluster_id,
            target=snapshot.target,
            repaired=plan.register_count + plan.unregister_count,
        )
        return "superseded"

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
            last_error=f"{type(error).__name__}: {error}",
            last_error_at=self._clock(),
        )
        try:
            self._storage.save_applied(noted, etag)
        except AksfwError as failure:
            log_event(log, "apply.error_not_recorded", logging.WARNING, error=str(failure))

    def _skip(self, snapshot: Snapshot, outcome: str) -> ApplyOutcome:
        log_event(
            log,
            "apply.skipped",
            cluster=snapshot.cluster_id,
            target=snapshot.target,
            outcome=outcome,
        )
        return ApplyOutcome(outcome)


def check_snapshot(snapshot: Snapshot) -> None:
    """Refuse a snapshot that could touch tags its cluster does not own.

    Raises:
        MalformedMessage: a bad tag name or target, or a tag outside the cluster's.
    """
    try:
        check_cluster_name(snapshot.tag_name)
    except InputError as error:
        raise MalformedMessage(f"snapshot: {error}") from None
    if snapshot.target != PANORAMA_TARGET and not _SERIAL_RE.fullmatch(snapshot.target):
        raise MalformedMessage(f"snapshot: target {snapshot.target!r} is not panorama or a serial")
    owned = ownership(snapshot.tag_name)
    for ip, tags in snapshot.tags.items():
        for tag in tags:
            if not owned.match(tag) or not registrable(tag):
                raise MalformedMessage(
                    f"snapshot: tag {tag[:140]!r} on {ip} is not {snapshot.tag_name}'s"
                )


def _merge(left: IpTags, right: IpTags) -> dict[str, frozenset[str]]:
    merged = dict(left)
    for ip, tags in right.items():
        merged[ip] = merged.get(ip, frozenset()) | tags
    return merged


def _failures_text(result: ApplyResult) -> str:
    first = result.failures[0]
    more = f" (and {len(result.failures) - 1} more)" if len(result.failures) > 1 else ""
    return f"Panorama refused {first.action} {first.ip}: {first.message}{more}"
