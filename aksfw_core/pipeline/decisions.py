"""The pipeline's decisions, as pure functions of plain data: which targets need a
snapshot, whether a resync is a mass removal and whether it is held back or goes ahead,
whether a snapshot is stale, which stored table of a target may serve a comparison, and
what a target's canary says. No Storage, no queue, no clock: the resyncer, the applier,
the shared tables and the canary check read what these need, call them, and carry out the
answer (tests/pipeline/test_decisions.py tests them as tables).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

from aksfw_core.limits import Limits
from aksfw_core.pipeline.state import (
    AppliedState,
    EnqueuedMark,
    HeldBack,
    StateSummary,
    TableRecord,
)
from aksfw_core.rules.model import IpTags
from aksfw_core.rules.outcome import Outcome
from aksfw_core.rules.plan import (
    MassRemoval,
    mass_removal,
    pair_count,
    removal_of,
    without_arm_entries,
)

# -- which targets need the snapshot ------------------------------------------------------


def _summary(applied: Mapping[str, StateSummary], target: str) -> StateSummary | None:
    return applied.get(target.lower())


def _dirty(applied: Mapping[str, StateSummary], target: str) -> bool:
    """The last apply on `target` failed or was refused in part."""
    summary = _summary(applied, target)
    return summary is not None and summary.dirty


def unapplied(
    targets: Iterable[str], applied: Mapping[str, StateSummary], wanted: str
) -> list[str]:
    """The targets that do not cleanly hold the tags with fingerprint `wanted` (`applied`:
    the summaries by lower-cased target)."""

    def holds_them(target: str) -> bool:
        summary = _summary(applied, target)
        return summary is not None and not summary.dirty and summary.fingerprint == wanted

    return [target for target in targets if not holds_them(target)]


def needs_marks(pending: Iterable[str], applied: Mapping[str, StateSummary]) -> bool:
    """Whether the enqueued marks could spare any of `pending` (a dirty target is queued
    again whatever its mark says, so when all are dirty the marks need not be read)."""
    return not all(_dirty(applied, target) for target in pending)


def not_queued_recently(
    pending: Iterable[str],
    applied: Mapping[str, StateSummary],
    marks: Mapping[str, EnqueuedMark],
    wanted: str,
    *,
    now: float,
    mark_ttl_s: float,
) -> list[str]:
    """Of `pending`, those dirty or not queued with the fingerprint `wanted` within
    `mark_ttl_s` (after that an identical snapshot is queued again, so a lost message
    heals). `marks`: by lower-cased target."""

    def queued_recently(target: str) -> bool:
        mark = marks.get(target.lower())
        return (
            mark is not None and mark.fingerprint == wanted and now - mark.enqueued_at < mark_ttl_s
        )

    return [t for t in pending if _dirty(applied, t) or not queued_recently(t)]


# -- mass removals --------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    """The largest mass removal a resync would be, and the target that would lose most."""

    removal: MassRemoval
    target: str


def changed(targets: Iterable[str], applied: Mapping[str, StateSummary], wanted: str) -> list[str]:
    """Of `targets`, those whose applied state (by its summary) holds other tags than those
    with fingerprint `wanted`, as the summaries spell them: the only ones a resync could
    unregister pairs from (a target with nothing applied gets a first sync)."""
    found = (_summary(applied, target) for target in targets)
    return [summary.target for summary in found if summary and summary.fingerprint != wanted]


def counted_removal(
    cluster: str,
    targets: Iterable[str],
    applied: Mapping[str, StateSummary],
    wanted_fingerprint: str,
    wanted: IpTags,
    *,
    fraction: float,
    min_pairs: int,
) -> Removal | None:
    """The largest mass removal (`rules.plan.removal_of`) that queuing `wanted` for
    `targets` is by the applied summaries' counts alone, or None when they do not show one
    (then only the applied states can tell: `worst_removal`). No state is read.

    The rule leaves the cluster's Resource Manager entries out (node subnets, outbound
    addresses), and a summary does not say how many it holds; each key holds at most one
    such pair (`without_arm_entries`), so a target holds at least `tags - ips`
    other pairs and loses at least that many less the wanted ones: a mass removal by these
    bounds is one whatever the entries are. The counts it reports assume the target holds
    as many node-subnet entries as are wanted (exact unless those changed too), and count
    every wanted pair as kept (so the removal is at least that)."""
    services = pair_count(without_arm_entries(cluster, wanted))
    networks = pair_count(wanted) - services
    worst: Removal | None = None
    for target in changed(targets, applied, wanted_fingerprint):
        summary = applied[target.lower()]
        at_least = summary.tags - min(summary.ips, summary.tags)
        shown = mass_removal(max(0, at_least - services), at_least, services, fraction, min_pairs)
        if shown is not None:
            registered = summary.tags - min(networks, summary.ips, summary.tags)
            found = MassRemoval(removing=max(0, registered - services), registered=registered)
            if worst is None or found.removing > worst.removal.removing:
                worst = Removal(found, summary.target)
    return worst


def worst_removal(
    cluster: str,
    states: Iterable[AppliedState],
    wanted: IpTags,
    fraction: float,
    min_pairs: int,
) -> Removal | None:
    """The largest mass removal (`rules.plan.removal_of`) that queuing `wanted` would be
    for the targets of these applied `states`: what each would actually unregister."""
    worst: Removal | None = None
    for state in states:
        found = removal_of(cluster, state.tags, wanted, fraction, min_pairs)
        if found is not None and (worst is None or found.removing > worst.removal.removing):
            worst = Removal(found, state.target)
    return worst


class HoldStep(Enum):
    """What a resync does about a mass removal (`hold_step`)."""

    APPLY = "apply"
    """No mass removal and no hold: queue the snapshots."""
    RELEASE = "release"
    """No mass removal any more: clear the hold, queue the snapshots."""
    CONFIRMED = "confirmed"
    """The confirming list computed the same tags: clear the hold, queue the removal."""
    WAIT = "wait"
    """Held, a confirmation is pending: queue nothing, write nothing."""
    HOLD = "hold"
    """Hold (save `held`) and queue a confirming resync; queue nothing else."""
    STOP = "stop"
    """Hold (save `held`) without another confirmation: the lists keep disagreeing."""


@dataclass(frozen=True)
class HoldDecision:
    step: HoldStep
    held: HeldBack | None = None
    """The hold to save (`HOLD`, `STOP`)."""

    @property
    def held_back(self) -> bool:
        """Whether the resync queues nothing."""
        return self.step in (HoldStep.WAIT, HoldStep.HOLD, HoldStep.STOP)


def hold_step(
    *,
    cluster_id: str,
    wanted: str,
    removal: Removal | None,
    hold: HeldBack | None,
    confirming: bool,
    now: float,
    limits: Limits,
) -> HoldDecision:
    """A mass removal is held back until a second, later list computes the same tags
    (`wanted`, a fingerprint): `confirming` says this resync is that second list, `hold`
    is the cluster's hold if one is noted; `limits` gives the confirmation's delay, the
    slack after it and how many confirmations a disagreeing chain may queue. See
    `pipeline.resyncer`."""
    if removal is None:
        return HoldDecision(HoldStep.APPLY if hold is None else HoldStep.RELEASE)
    removing = removal.removal.removing
    if hold is None:
        return HoldDecision(HoldStep.HOLD, HeldBack(cluster_id, wanted, now, now, removing, 1))
    if confirming and hold.fingerprint == wanted:
        return HoldDecision(HoldStep.CONFIRMED)
    if confirming:  # the second list disagrees with the first
        again = hold.confirmations < limits.mass_removal_max_confirmations
        held = replace(
            hold,
            fingerprint=wanted,
            held_at=now,
            pairs_to_remove=removing,
            confirmations=hold.confirmations + (1 if again else 0),
        )
        return HoldDecision(HoldStep.HOLD if again else HoldStep.STOP, held)
    if now - hold.held_at < limits.mass_removal_confirm_delay_s + limits.mass_removal_hold_slack_s:
        return HoldDecision(HoldStep.WAIT)
    # The confirmation is overdue (lost, or the chain ended): start over.
    held = replace(hold, fingerprint=wanted, held_at=now, pairs_to_remove=removing, confirmations=1)
    return HoldDecision(HoldStep.HOLD, held)


# -- stale snapshots ----------------------------------------------------------------------


def seconds_ahead(version: int, now: float) -> float:
    """How far a version (ns since the epoch) is ahead of the clock `now` (seconds)."""
    return (version - int(now * 1e9)) / 1e9


def stale(
    version: int, fingerprint: str, state: AppliedState | None, *, trusted: bool
) -> Outcome | None:
    """Why a snapshot of `version` and `fingerprint` is not applied over `state`, or None
    to apply it: an older one than the applied (`SKIPPED_OLDER`), or the very one applied
    cleanly (`DUPLICATE`). A state not `trusted` for ordering (its version too far ahead)
    orders nothing."""
    if state is None or not trusted:
        return None
    if version < state.version:
        return Outcome.SKIPPED_OLDER
    if version == state.version and fingerprint == state.fingerprint and not state.dirty:
        return Outcome.DUPLICATE
    return None


# -- shared tables ------------------------------------------------------------------------


def last_write(state: AppliedState | None) -> float | None:
    """When the cluster last wrote to the target, at the latest, by what its state records
    (saved after every apply, and after a failed one with its error's time); None: never."""
    if state is None:
        return None
    return max(state.applied_at, state.last_error_at or 0.0)


def table_since(
    *, compare_since: float | None, wrote_at: float | None, now: float, limits: Limits
) -> float:
    """The earliest start of a read of a target's table that may serve one cluster's
    comparison with that target (`pipeline.shared_tables`), by `now` on this clock.

    - Exact: the read began at least `limits.shared_table_clock_skew_s` after the cluster
      last wrote there (`wrote_at`, another instance's clock perhaps), so it shows every
      write of the cluster, whose writes take turns (the apply lock). Other clusters'
      writes meanwhile do not matter: a cluster compares only its own tags.
    - Fresh: read since `compare_since` when the comparison was asked for at a time (an
      audit's start, a target found to have forgotten; one audit interval back at most,
      and never after `now`), so one read serves a whole audit cycle or repair; otherwise
      at most `limits.shared_table_max_age_s` old."""
    if compare_since is not None and compare_since >= now - limits.audit_interval_s:
        since = min(compare_since, now)
    else:
        since = now - limits.shared_table_max_age_s
    if wrote_at is not None:
        since = max(since, wrote_at + limits.shared_table_clock_skew_s)
    return since


def table_serves(record: TableRecord | None, since: float) -> bool:
    """Whether a stored table (`record`, None: there is none) was read since `since`; one
    that was too large to store then says so for as long (each apply reads itself)."""
    return record is not None and record.read_at >= since


# -- canaries -----------------------------------------------------------------------------


class CanaryStep(Enum):
    """What one check of a target's canary found (`canary_step`)."""

    FIRST = "first"
    """Gone, and this environment never registered it there (a first run, a new target):
    register it; nothing is declared."""
    PRESENT = "present"
    """The target holds it: register it again, so its timeout starts over."""
    FORGOT = "forgot"
    """Gone within its timeout: the target lost its runtime state (a reboot, a failover, a
    clear). Audit and repair the target, then register it again."""
    LAPSED = "lapsed"
    """Gone, but its timeout may have run out since it was last registered (no check ran in
    time): whether the target forgot cannot be told, so it is audited as if it had."""

    @property
    def repairs(self) -> bool:
        """Whether the target is audited and repaired now."""
        return self in (CanaryStep.FORGOT, CanaryStep.LAPSED)


def canary_step(
    *, present: bool, registered_at: float | None, now: float, timeout_s: float
) -> CanaryStep:
    """What a check that found the canary `present` (or not) means. `registered_at` is
    when this environment last registered this very canary on the target (None: never);
    `timeout_s` the timeout it was registered with.

    The device counts the timeout from the registration's arrival, aksfw from its answer,
    on another clock: a canary counts as forgotten only when it should still have had a
    margin (a quarter of the timeout, at most a minute) of its life left."""
    if present:
        return CanaryStep.PRESENT
    if registered_at is None:
        return CanaryStep.FIRST
    margin = min(60.0, timeout_s / 4)
    if now - registered_at < timeout_s - margin:
        return CanaryStep.FORGOT
    return CanaryStep.LAPSED
