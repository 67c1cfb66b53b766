"""The pipeline's decisions as tables: no Storage, no queue, no clock
(`aksfw_core.pipeline.decisions`, and the app's own: the uninstall gate, the grace period
of an unmonitored cluster). When changes make a cluster listed: test_list_budget.py."""

from __future__ import annotations

import pytest

from aksfw_core.app.tombstones import Unmonitored, unmonitored_step
from aksfw_core.app.uninstall_gate import Work, proceeds_while_uninstalling
from aksfw_core.limits import Limits
from aksfw_core.pipeline.decisions import (
    CanaryStep,
    HoldStep,
    Removal,
    canary_step,
    changed,
    counted_removal,
    hold_step,
    needs_marks,
    not_queued_recently,
    stale,
    unapplied,
    worst_removal,
)
from aksfw_core.pipeline.state import AppliedState, EnqueuedMark, HeldBack, StateSummary
from aksfw_core.rules.outcome import Outcome
from aksfw_core.rules.plan import MassRemoval

C = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1"


def summary(target, fingerprint="f1", tags=10, dirty=False, ips=None):
    ips = tags if ips is None else ips
    return StateSummary(C, "c1", target, 1, fingerprint, 0.0, ips=ips, tags=tags, dirty=dirty)


def by_target(*summaries):
    return {s.target.lower(): s for s in summaries}


# -- which targets need the snapshot ----------------------------------------------------------


@pytest.mark.parametrize(
    ("applied", "pending"),
    [
        ((), ["panorama", "007"]),
        ((summary("panorama"),), ["007"]),
        ((summary("panorama"), summary("007")), []),
        ((summary("panorama", fingerprint="old"), summary("007")), ["panorama"]),
        ((summary("panorama", dirty=True), summary("007")), ["panorama"]),
        ((summary("PANORAMA"),), ["007"]),  # targets compare case-insensitively
    ],
)
def test_targets_that_do_not_cleanly_hold_the_tags_are_pending(applied, pending):
    assert unapplied(["panorama", "007"], by_target(*applied), "f1") == pending


@pytest.mark.parametrize(
    ("pending", "applied", "needed"),
    [
        (["panorama"], (), True),
        (["panorama"], (summary("panorama", dirty=True),), False),  # queued regardless
        (["panorama", "007"], (summary("panorama", dirty=True),), True),
    ],
)
def test_the_marks_are_read_only_when_they_could_spare_a_target(pending, applied, needed):
    assert needs_marks(pending, by_target(*applied)) is needed


def mark(target, fingerprint="f1", at=100.0):
    return EnqueuedMark(C, target, 1, fingerprint, at)


@pytest.mark.parametrize(
    ("marks", "applied", "now", "queued"),
    [
        ({}, (), 100.0, ["panorama"]),
        ({"panorama": mark("panorama")}, (), 100.0 + 59, []),
        ({"panorama": mark("panorama")}, (), 100.0 + 60, ["panorama"]),  # the mark expired
        ({"panorama": mark("panorama", fingerprint="other")}, (), 100.0, ["panorama"]),
        ({"panorama": mark("panorama")}, (summary("panorama", dirty=True),), 100.0, ["panorama"]),
    ],
)
def test_a_target_queued_recently_with_the_same_tags_is_spared(marks, applied, now, queued):
    found = not_queued_recently(
        ["panorama"], by_target(*applied), marks, "f1", now=now, mark_ttl_s=60
    )
    assert found == queued


# -- mass removals ------------------------------------------------------------------------------


NODES = {"10.224.0.0/16": frozenset({"aks.c1.node_subnet"})}


def ips_with(count, first=0):
    """`count` IP-tag pairs, one per IP."""
    return {f"10.0.0.{n}": frozenset({f"aks.c1.web{n}"}) for n in range(first, first + count)}


def as_tuple(found):
    if found is None:
        return None
    return (found.target, found.removal.removing, found.removal.registered)


def test_only_targets_holding_other_tags_can_lose_any():
    applied = by_target(summary("PANORAMA", fingerprint="old"), summary("007"))
    assert changed(["panorama", "007", "008"], applied, "f1") == ["PANORAMA"]


@pytest.mark.parametrize(
    ("applied", "wanted", "expected"),
    [
        ((), {}, None),  # nothing applied: a first sync is never a mass removal
        ((summary("panorama", tags=12),), {}, None),  # the fingerprint is the wanted one
        # 12 pairs on 6 IPs: at least 6 are Service pairs, all go
        ((summary("panorama", "old", tags=12, ips=6),), {}, ("panorama", 12, 12)),
        # one pair per IP: every one could be a node-subnet entry, so only a read can tell
        ((summary("panorama", "old", tags=12, ips=12),), {}, None),
        ((summary("panorama", "old", tags=40, ips=20),), ips_with(25), None),  # maybe not most
        ((summary("panorama", "old", tags=40, ips=20),), ips_with(5), ("panorama", 35, 40)),
        # a same-size replacement: the counts show nothing, a read must
        ((summary("panorama", "old", tags=12, ips=6),), ips_with(12, first=50), None),
        (
            (summary("panorama", "old", tags=40, ips=20), summary("007", "old", tags=60, ips=30)),
            ips_with(5),
            ("007", 55, 60),
        ),
        # a Service IP with two pairs and the node subnet, emptied but for the node subnet
        ((summary("panorama", "old", tags=3, ips=2),), NODES, ("panorama", 2, 2)),
    ],
)
def test_the_summaries_counts_show_a_mass_removal_only_when_certain(applied, wanted, expected):
    found = counted_removal(
        "c1", ["panorama", "007"], by_target(*applied), "f1", wanted, fraction=0.5, min_pairs=10
    )
    assert as_tuple(found) == expected


def state(target, tags):
    return AppliedState(C, "c1", target, 1, "old", tags=tags)


@pytest.mark.parametrize(
    ("states", "wanted", "expected"),
    [
        ((), {}, None),
        ((state("panorama", ips_with(12)),), ips_with(12), None),
        ((state("panorama", ips_with(12)),), ips_with(12, first=50), ("panorama", 12, 12)),
        ((state("panorama", ips_with(12)),), ips_with(8), None),  # 4 of 12
        (
            (state("panorama", ips_with(12)), state("007", ips_with(20))),
            ips_with(12, first=50),
            ("007", 20, 20),
        ),
        ((state("panorama", {**ips_with(2), **NODES}),), NODES, ("panorama", 2, 2)),
        ((state("panorama", NODES),), {}, None),  # node-subnet entries are not counted
    ],
)
def test_the_worst_mass_removal_is_what_a_target_would_actually_unregister(
    states, wanted, expected
):
    assert as_tuple(worst_removal("c1", states, wanted, 0.5, 10)) == expected


REMOVAL = Removal(MassRemoval(removing=15, registered=20), "panorama")
LIMITS = Limits(mass_removal_confirm_delay_s=60.0, mass_removal_hold_slack_s=30.0)
DELAY = LIMITS.mass_removal_confirm_delay_s
HOLD_WINDOW_SLACK_S = LIMITS.mass_removal_hold_slack_s
MAX_CONFIRMATIONS = LIMITS.mass_removal_max_confirmations


def held(fingerprint="f1", held_at=1000.0, confirmations=1):
    return HeldBack(C, fingerprint, 900.0, held_at, 15, confirmations)


@pytest.mark.parametrize(
    ("case", "removal", "hold", "confirming", "now", "step", "confirmations"),
    [
        ("no removal, no hold", None, None, False, 1000.0, HoldStep.APPLY, None),
        ("no removal any more", None, held(), False, 1000.0, HoldStep.RELEASE, None),
        ("first sight", REMOVAL, None, False, 1000.0, HoldStep.HOLD, 1),
        ("confirmed", REMOVAL, held(), True, 1060.0, HoldStep.CONFIRMED, None),
        ("confirmation disagrees", REMOVAL, held("f0"), True, 1060.0, HoldStep.HOLD, 2),
        ("disagrees too often", REMOVAL, held("f0", confirmations=MAX_CONFIRMATIONS), True,
         1060.0, HoldStep.STOP, MAX_CONFIRMATIONS),
        ("pending", REMOVAL, held(), False, 1000.0 + DELAY + HOLD_WINDOW_SLACK_S - 1,
         HoldStep.WAIT, None),
        ("overdue: start over", REMOVAL, held("f0", confirmations=3), False,
         1000.0 + DELAY + HOLD_WINDOW_SLACK_S, HoldStep.HOLD, 1),
    ],
)  # fmt: skip
def test_a_mass_removal_is_held_until_a_second_list_agrees(
    case, removal, hold, confirming, now, step, confirmations
):
    decision = hold_step(cluster_id=C, wanted="f1", removal=removal, hold=hold,
                         confirming=confirming, now=now, limits=LIMITS)  # fmt: skip
    assert decision.step is step, case
    assert decision.held_back is (step in (HoldStep.WAIT, HoldStep.HOLD, HoldStep.STOP))
    if confirmations is None:
        assert decision.held is None, case
    else:
        assert decision.held is not None
        assert (decision.held.fingerprint, decision.held.held_at) == ("f1", now)
        assert decision.held.confirmations == confirmations, case
        assert decision.held.pairs_to_remove == 15


# -- stale snapshots ----------------------------------------------------------------------------


def state(version, fingerprint="f1", dirty=False):
    return AppliedState(C, "c1", "panorama", version, fingerprint, dirty=dirty)


@pytest.mark.parametrize(
    ("version", "fingerprint", "applied", "trusted", "outcome"),
    [
        (5, "f1", None, True, None),
        (4, "f1", state(5), True, Outcome.SKIPPED_OLDER),
        (5, "f1", state(5), True, Outcome.DUPLICATE),
        (5, "f1", state(5, dirty=True), True, None),  # refused in part: apply again
        (5, "f2", state(5), True, None),
        (6, "f1", state(5), True, None),
        (4, "f1", state(5), False, None),  # a state too far ahead orders nothing
    ],
)
def test_a_stale_snapshot_is_not_applied(version, fingerprint, applied, trusted, outcome):
    assert stale(version, fingerprint, applied, trusted=trusted) == outcome


# -- the app's own ------------------------------------------------------------------------------


@pytest.mark.parametrize("work", list(Work))
def test_only_tombstones_proceed_while_uninstalling(work):
    assert proceeds_while_uninstalling(work) is (work is Work.TOMBSTONE)


@pytest.mark.parametrize(
    ("missing_since", "now", "step"),
    [
        (None, 1000.0, Unmonitored.MARK),
        (1000.0, 1000.0 + 899, Unmonitored.WAIT),
        (1000.0, 1000.0 + 900, Unmonitored.TOMBSTONE),
    ],
)
def test_an_unmonitored_cluster_keeps_its_tags_for_the_grace_period(missing_since, now, step):
    assert unmonitored_step(missing_since, now, 900.0) is step


@pytest.mark.parametrize(
    ("present", "registered_at", "now", "step"),
    [
        (True, None, 1000.0, CanaryStep.PRESENT),  # someone else's registration: fine
        (True, 1000.0 - 7200, 1000.0, CanaryStep.PRESENT),
        (False, None, 1000.0, CanaryStep.FIRST),  # never registered here: nothing to tell
        (False, 1000.0 - 300, 1000.0, CanaryStep.FORGOT),  # one timer period ago
        (False, 1000.0 + 5, 1000.0, CanaryStep.FORGOT),  # the clock stepped back
        (False, 1000.0 - 3539, 1000.0, CanaryStep.FORGOT),  # a minute of its life left
        (False, 1000.0 - 3540, 1000.0, CanaryStep.LAPSED),  # it may just have expired
        (False, 1000.0 - 86_400, 1000.0, CanaryStep.LAPSED),  # no check ran for a day
    ],
)
def test_a_canary_gone_within_its_timeout_means_the_target_forgot(
    present, registered_at, now, step
):
    found = canary_step(present=present, registered_at=registered_at, now=now, timeout_s=3600)
    assert found is step
    assert found.repairs is (step in (CanaryStep.FORGOT, CanaryStep.LAPSED))


def test_a_short_canary_timeout_keeps_a_quarter_of_it_as_the_margin():
    assert canary_step(present=False, registered_at=0.0, now=89.0, timeout_s=120) is (
        CanaryStep.FORGOT
    )
    assert canary_step(present=False, registered_at=0.0, now=90.0, timeout_s=120) is (
        CanaryStep.LAPSED
    )
