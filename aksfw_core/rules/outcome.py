"""What applying one snapshot did: one `Outcome` of a fixed set, and the pairs it wrote.
Pure data, shared by the applier (which decides it), the queue trigger and telemetry
(which counts it as `applied`, `unchanged` or `skipped`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """How an apply ended (its log and span attribute `outcome`)."""

    APPLIED = "applied"
    """Panorama now holds the snapshot's tags; something was written."""
    UNCHANGED = "unchanged"
    """Panorama held them already: nothing to write, the state saved."""
    TOMBSTONED = "tombstoned"
    """Every tag the cluster had on the target removed, its state deleted."""
    SKIPPED_OLDER = "skipped-older"
    """The applied state is newer."""
    DUPLICATE = "duplicate"
    """This very snapshot was applied already."""
    SUPERSEDED = "superseded"
    """Another applier saved a newer state meanwhile; Panorama was made to hold that."""
    SUPERSEDED_IN_QUEUE = "superseded-in-queue"
    """A newer snapshot of the same (cluster, target) is queued: this one is not applied."""
    NOTHING_APPLIED = "nothing-applied"
    """A tombstone for a target the cluster has no applied state on."""
    UNINSTALLING = "uninstalling"
    """Not applied: an uninstall pauses every snapshot but tombstones."""

    @property
    def metric(self) -> str:
        """`aksfw.apply.duration`'s outcome when nothing was written: `unchanged` for an
        apply that compared and found nothing to do, `skipped` for one that did not apply."""
        return "unchanged" if self in _COMPARED else "skipped"


_COMPARED = frozenset({Outcome.APPLIED, Outcome.UNCHANGED, Outcome.TOMBSTONED, Outcome.SUPERSEDED})


@dataclass(frozen=True)
class ApplyOutcome:
    """What applying one snapshot did."""

    outcome: Outcome
    registered: int = 0
    """IP-tag pairs registered on the target."""
    unregistered: int = 0
    """IP-tag pairs unregistered from the target."""
    pairs_kept: int | None = None
    """IP-tag pairs aksfw holds on the target afterwards; None when it did not apply."""
