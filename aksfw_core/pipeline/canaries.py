"""A target that forgot (a reboot, an HA failover, a clear of its registered IPs) is noticed
at the next timer run and repaired then, not at the next hourly audit: every target holds
this environment's canary (`panorama.canary`), and the timer checks it.

One run: the canary of every target is checked with one request per target, a few targets
at a time (`limits.panorama_max_concurrent_requests`), all within
`limits.canary_deadline_s`. What a check means is `decisions.canary_step`'s. A target
found to have forgotten (or whose canary's timeout ran out unchecked) is repaired through
the path every failed apply takes: the target's shared table is invalidated (a table read
before it forgot must serve no repair: `pipeline.shared_tables`), the applied state of
each cluster on it is marked dirty (its summary, If-Match), so the next apply compares with
the target itself and registers what is missing, and each of those clusters is resynced at
once, its comparisons sharing one read of the target made since. Only once that is noted is
the canary registered again, on every target that answered, so a run that fails halfway
finds the canary gone again next time. Each target's record (`pipeline.state.CanaryRecord`)
keeps when it was checked, registered and found to have forgotten, for `status`.

An uninstall removes the canaries it has records of; one it cannot reach expires by itself
(`limits.canary_timeout_s`).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from aksfw_core.errors import AksfwError, Retryable
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.panorama.canary import Canary, canary_timeout
from aksfw_core.panorama.client import PanoramaClient
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.decisions import CanaryStep, canary_step
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.shared_tables import SharedTables
from aksfw_core.pipeline.state import CanaryRecord, cut_error
from aksfw_core.pipeline.state_store import ListedSummary, StateStore
from aksfw_core.retry import current_deadline, overall_deadline
from aksfw_core.rules.messages import ResyncRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

CanaryCounter = Callable[[str, str], None]
"""Told each check's target and outcome (`Telemetry.canary_checked`)."""

_MARK_ATTEMPTS = 3
"""Listings of a cluster's summaries one dirty mark may take (an apply may save between
the listing and the mark)."""


@dataclass(frozen=True)
class CanaryCheck:
    """What one run found on one target."""

    target: str
    step: CanaryStep | None
    """None: the check failed (`error`)."""
    error: str | None = None
    """Why the check, the repair or the registration failed."""
    clusters: tuple[str, ...] = ()
    """The clusters resynced to repair the target."""


class CanaryWatch:
    """Checks, repairs and registers the canaries of every configured target."""

    def __init__(
        self,
        canary: Canary,
        store: StateStore,
        queues: MessageQueues,
        targets: TargetResolver,
        panorama_for: Callable[[str], PanoramaClient],
        *,
        clock: Callable[[], float] = time.time,
        limits: Limits | None = None,
        counted: CanaryCounter | None = None,
        tables: SharedTables | None = None,
    ) -> None:
        self.canary = canary
        self._tables = tables
        self._store = store
        self._queues = queues
        self._targets = targets
        self._panorama_for = panorama_for
        self._clock = clock
        self._limits = limits or Limits()
        self._timeout_s = canary_timeout(self._limits.canary_timeout_s)
        self._counted = counted or (lambda target, outcome: None)

    def check(self) -> list[CanaryCheck]:
        """One run over every target (the module's docstring), within
        `limits.canary_deadline_s`. Never raises: what fails is logged, counted and kept
        in the target's record, and the next run tries again."""
        with overall_deadline(self._limits.canary_deadline_s):
            return self._check()

    def _check(self) -> list[CanaryCheck]:
        started = time.monotonic()
        try:
            targets = self._targets.names()
            records = self._store.canaries()
        except AksfwError as error:
            log_event(log, "canary.unchecked", logging.WARNING, error=str(error))
            return []
        found = _concurrently(targets, self._present, self._limits)
        now = self._clock()
        steps: dict[str, CanaryStep] = {}
        for target in targets:
            present = found[target]
            if isinstance(present, bool):
                steps[target] = canary_step(
                    present=present,
                    registered_at=_registered_at(records.get(target.lower()), self.canary),
                    now=now,
                    timeout_s=self._timeout_s,
                )
        repaired, not_repaired = self._repair([t for t, step in steps.items() if step.repairs])
        registered = _concurrently(
            [target for target in steps if target not in not_repaired],
            self._register,
            self._limits,
        )
        results = []
        for target in targets:
            outcome, written = found[target], registered.get(target)
            failure = _text(outcome) or not_repaired.get(target) or _text(written)
            check = CanaryCheck(target, steps.get(target), failure, repaired.get(target, ()))
            self._record(check, records.get(target.lower()), now, written)
            results.append(check)
        self._log_run(results, time.monotonic() - started)
        return results

    def records(self) -> list[CanaryRecord]:
        """Every target's record, for `status`.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        return sorted(self._store.canaries().values(), key=lambda record: record.target)

    def remove(self, *, dry_run: bool) -> list[tuple[str, bool]]:
        """Unregister every canary this environment has a record of and forget the records
        (an uninstall); with `dry_run`, only list them. Returns (target, removed) pairs; a
        canary that could not be removed is logged and expires by itself.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed listing the records.
        """
        records = self._store.canaries()
        if dry_run:
            return [(record.target, False) for record in records.values()]
        with overall_deadline(self._limits.canary_deadline_s):
            return self._remove(records)

    def _remove(self, records: dict[str, CanaryRecord]) -> list[tuple[str, bool]]:
        def unregister(target: str) -> bool:
            record = records[target.lower()]
            with self._panorama_for(record.target) as panorama:
                panorama.write_canary(Canary(record.ip, record.tag), "unregister")
            self._store.delete_canary(record.target)
            return True

        names = [record.target for record in records.values()]
        done = _concurrently(names, unregister, self._limits)
        for target, outcome in done.items():
            if isinstance(outcome, BaseException):
                log_event(
                    log,
                    "uninstall.canary_kept",
                    logging.WARNING,
                    target=target,
                    error=_text(outcome),
                    expires_in_s=self._timeout_s,
                )
        return [(target, done[target] is True) for target in names]

    # ------------------------------------------------------------------ steps

    def _present(self, target: str) -> bool:
        with self._panorama_for(target) as panorama:
            return panorama.canary_present(self.canary)

    def _register(self, target: str) -> float:
        with self._panorama_for(target) as panorama:
            panorama.write_canary(self.canary, "register", self._timeout_s)
        return self._clock()

    def _repair(self, targets: list[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
        """Mark every cluster's applied state on `targets` dirty and resync those clusters:
        the clusters resynced by target, and why a target could not be (it keeps no
        canary, so the next run finds it gone again)."""
        if not targets:
            return {}, {}
        repaired: dict[str, tuple[str, ...]] = {}
        failed: dict[str, str] = {}
        try:
            summaries = self._store.summaries()
        except AksfwError as error:
            return {}, {target: str(error) for target in targets}
        queued: set[str] = set()
        for target in targets:
            listed = [s for s in summaries if s.summary.target.lower() == target.lower()]
            try:
                since = self._clock()
                if self._tables is not None:
                    self._tables.invalidate(target)
                for one in listed:
                    self._mark_dirty(one)
                clusters = tuple(dict.fromkeys(one.summary.cluster_id for one in listed))
                for cluster_id in clusters:
                    if cluster_id.casefold() not in queued:
                        reason = f"target {target} lost its registrations"
                        request = ResyncRequest(cluster_id, reason, compare_since=since)
                        self._queues.send(request)
                        queued.add(cluster_id.casefold())
            except AksfwError as error:
                failed[target] = str(error)
                continue
            repaired[target] = clusters
        return repaired, failed

    def _mark_dirty(self, listed: ListedSummary) -> None:
        """Raises Retryable: the state kept changing under the mark; AksfwError: Storage."""
        for _ in range(_MARK_ATTEMPTS):
            if listed.summary.dirty or self._store.mark_dirty(listed):
                return
            target = listed.summary.target.lower()
            again = [
                found
                for found in self._store.summaries(listed.summary.cluster_id)
                if found.summary.target.lower() == target
            ]
            if not again:
                return  # tombstoned meanwhile: nothing of the cluster left to repair
            listed = again[0]
        raise Retryable(f"the applied state of {listed.blob} kept changing")

    def _record(
        self,
        check: CanaryCheck,
        old: CanaryRecord | None,
        now: float,
        registered_at: float | BaseException | None,
    ) -> None:
        record = old or CanaryRecord(check.target, self.canary.ip, self.canary.tag)
        if (record.ip, record.tag) != (self.canary.ip, self.canary.tag):
            record = CanaryRecord(check.target, self.canary.ip, self.canary.tag)
        if check.step is not None:
            record = replace(record, checked_at=now)
        if check.step is CanaryStep.FORGOT:
            record = replace(record, forgot_at=now)
        if isinstance(registered_at, float):
            record = replace(record, registered_at=registered_at)
        error_at = now if check.error else None
        record = replace(record, error=cut_error(check.error), error_at=error_at)
        try:
            self._store.save_canary(record)
        except AksfwError as error:
            log_event(log, "canary.record_unsaved", logging.WARNING, target=check.target,
                      error=str(error))  # fmt: skip

    def _log_run(self, results: list[CanaryCheck], seconds: float) -> None:
        for check in results:
            self._counted(check.target, check.step.value if check.step else "failed")
            if check.step is CanaryStep.FORGOT:
                log_event(
                    log,
                    "panorama.target_forgot",
                    logging.WARNING,
                    target=check.target,
                    clusters=len(check.clusters),
                    repair=check.error or "queued",
                    message=(
                        f"{check.target} lost its registrations (canary gone: a reboot, a "
                        "failover or a clear): its clusters' tags are audited and repaired now"
                    ),
                )
            elif check.step is CanaryStep.LAPSED:
                log_event(
                    log,
                    "panorama.canary_lapsed",
                    logging.WARNING,
                    target=check.target,
                    clusters=len(check.clusters),
                    message=(
                        f"{check.target}'s canary was not refreshed within its timeout "
                        f"({self._timeout_s} s; the timer must run more often than that): "
                        "whether it lost its registrations cannot be told, so it is audited"
                    ),
                )
            if check.error:
                log_event(
                    log, "canary.failed", logging.WARNING, target=check.target, error=check.error
                )
        log_event(
            log,
            "canary.checked",
            targets=len(results),
            **{
                step.value: sum(1 for check in results if check.step is step) for step in CanaryStep
            },
            failed=sum(1 for check in results if check.error),
            duration_ms=round(seconds * 1000),
        )


def _registered_at(record: CanaryRecord | None, canary: Canary) -> float | None:
    """When this very canary was last registered on the record's target (None: never, or
    only another canary, of an environment identified otherwise before)."""
    if record is None or (record.ip, record.tag) != (canary.ip, canary.tag):
        return None
    return record.registered_at


def _text(outcome: object) -> str | None:
    if isinstance(outcome, BaseException):
        return f"{type(outcome).__name__}: {outcome}"
    return None


def _concurrently(
    targets: Iterable[str], work: Callable[[str], T], limits: Limits
) -> dict[str, T | BaseException]:
    """`work(target)` for each target, `limits.panorama_max_concurrent_requests` at a time,
    within the overall deadline of the block (`retry.overall_deadline`): each target's
    answer, or what it raised (a target not started before the deadline: `Retryable`)."""
    names = list(targets)
    if not names:
        return {}
    workers = max(1, min(limits.panorama_max_concurrent_requests, len(names)))

    def bounded(target: str) -> T | BaseException:
        deadline = current_deadline()
        if deadline is not None and deadline.reached():
            return Retryable(f"not reached within {limits.canary_deadline_s} s")
        try:
            return work(target)
        except Exception as error:  # kept per target, logged by the caller
            return error

    with ThreadPoolExecutor(workers) as pool:
        # Each task runs in a copy of this context: the deadline bounds every request.
        futures = {
            target: pool.submit(contextvars.copy_context().run, bounded, target) for target in names
        }
        return {target: future.result() for target, future in futures.items()}
