"""When a cluster's changes make it listed, as pure decisions over one record per cluster
(its *list budget*, kept by `pipeline.list_budgets` as a blob every instance shares).

- A change for a cluster with no list queued or in flight (*idle*) is listed at once.
- A change while a list is queued but not begun is covered by it: nothing more.
- A change while a list is in flight asks for exactly one more list after it ends
  (`again`), however many changes arrive and on however many instances.
- Every list that changes ask for takes one from a token bucket
  (`limits.resync_burst_lists`, refilled one per `limits.resync_refill_s`); the list after
  one in flight goes at once while the bucket holds one, else at the bucket's next token (a
  *slot*, a delayed message). An idle cluster's change never waits for a token: when no
  change arrives during a list, the cluster's changes cost one list each and never two at
  once. A list nobody's change asked for (the timer's, a manual one) is not noted.

A record written by a clock that runs ahead, or by an instance that died mid-list, is not
believed for ever: a queued list counts for `PENDING_SLACK_S` past its time, a list in
flight for `limits.kube_list_deadline_s` (the longest a list may take). No Storage, no
clock: tests/pipeline/test_list_budget.py tests these as tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from aksfw_core.limits import Limits

PENDING_SLACK_S = 60.0
"""Seconds past its time a queued list is believed to begin (a queue that lags, a host
that polls slowly); after that a change queues another, so a lost message delays changes
by this much at most."""

EARLY_S = 1.0
"""Seconds before its time a queued list may begin on another instance's clock (and the
queue's delays are whole seconds): a list that begins this close to a queued one's time
is that one."""


@dataclass(frozen=True)
class ListBudget:
    """One cluster's list budget as every instance reads it."""

    tokens: float
    """Lists the bucket held at `at`; below 0 while a slot is reserved ahead."""
    at: float
    """When `tokens` was counted (seconds since the epoch)."""
    due: float | None = None
    """A list is queued for this time and has not begun."""
    lister: str | None = None
    """The list in flight: who began it (an opaque name)."""
    since: float | None = None
    """When the list in flight began."""
    again: bool = False
    """A change arrived during the list in flight: one more list after it."""
    again_at: float | None = None
    """When the first such change arrived (the next list's origin, for the lag)."""


def full(now: float, limits: Limits) -> ListBudget:
    """The budget of a cluster nothing has listed yet: a full bucket."""
    return ListBudget(tokens=float(limits.resync_burst_lists), at=now)


class Step(Enum):
    """What a change, or the end of a list, leads to."""

    LIST_NOW = "list-now"
    """Queue (or, at the start of a resync, run) a list at once."""
    LIST_AT = "list-at"
    """Queue a list for `Decision.due`: the bucket is empty until then."""
    ONE_MORE = "one-more"
    """A list is in flight: one more list after it ends (noted in the record)."""
    COVERED = "covered"
    """A list queued, begun after the change, or already asked for, covers it."""
    NOTHING = "nothing"
    """The list ended and no change arrived meanwhile (or another list took over)."""


@dataclass(frozen=True)
class Decision:
    """A step, the record to write for it (None: write nothing), and for a list to queue
    when it is due and when the first change it is for arrived."""

    step: Step
    budget: ListBudget | None
    due: float | None = None
    origin: float | None = None


def level(budget: ListBudget, now: float, limits: Limits) -> float:
    """Lists the bucket holds at `now` (at most the burst; below 0 while a slot is
    reserved ahead)."""
    earned = max(0.0, now - budget.at) / limits.resync_refill_s
    return min(float(limits.resync_burst_lists), budget.tokens + earned)


def pending(budget: ListBudget, now: float, limits: Limits) -> bool:
    """Whether a queued list that has not begun is believed: not more than
    `PENDING_SLACK_S` past its time, nor further ahead than a slot can be (plus the clock
    skew allowed)."""
    if budget.due is None:
        return False
    ahead = budget.due - now
    return -PENDING_SLACK_S <= ahead <= limits.resync_refill_s + limits.max_version_skew_s


def listing(budget: ListBudget, now: float, limits: Limits) -> bool:
    """Whether a list in flight is believed: begun at most `limits.kube_list_deadline_s`
    ago (and not further ahead than the clock skew allowed)."""
    if budget.lister is None or budget.since is None:
        return False
    return -limits.max_version_skew_s <= now - budget.since < limits.kube_list_deadline_s


def on_change(
    budget: ListBudget | None,
    now: float,
    limits: Limits,
    *,
    changed_at: float | None = None,
) -> Decision:
    """A change for the cluster arrives at `now`. `changed_at`: for a follow-up, the time
    it stands for (a list in flight begun since then covers it); None for an event, which
    any list in flight may have missed.

    Idle: list now (taking a token if there is one). A queued list covers the change; a
    list in flight gets one more after it (once)."""
    budget = budget or full(now, limits)
    if pending(budget, now, limits):
        return Decision(Step.COVERED, None)
    if listing(budget, now, limits):
        assert budget.since is not None
        if budget.again or (changed_at is not None and budget.since >= changed_at):
            return Decision(Step.COVERED, None)
        return Decision(Step.ONE_MORE, replace(budget, again=True, again_at=now))
    taken = max(0.0, level(budget, now, limits) - 1)
    queued = ListBudget(tokens=taken, at=now, due=now)
    return Decision(Step.LIST_NOW, queued, due=now, origin=now)


def on_begin(
    budget: ListBudget | None, lister: str, now: float, limits: Limits
) -> ListBudget | None:
    """A list begins at `now`. When a list queued for changes is due (this one, or this one
    lists later than it would), it becomes the list in flight and covers every change
    before it (`again` cleared). Otherwise nobody's change asked for it (the timer, a
    manual resync) and None: it lists without a word to the budget, so the timer's resyncs
    cost one read each, no write."""
    if budget is None or not pending(budget, now, limits):
        return None
    assert budget.due is not None
    if budget.due > now + EARLY_S:  # a slot ahead: the changes wait for that list
        return None
    return replace(budget, due=None, lister=lister, since=now, again=False, again_at=None)


def on_end(
    budget: ListBudget | None, lister: str, now: float, limits: Limits, *, listed: bool
) -> Decision:
    """The list `lister` began ends at `now` (`listed`: it read the cluster; False: it
    failed, and the queue tries its message again, which covers every change so far).

    Another list that began since is the one in flight: nothing. Otherwise the record is
    cleared and, if a change arrived during this list, one more list is queued: at once
    while the bucket holds a token, else at its next one (the slot is reserved now)."""
    if budget is None or budget.lister != lister:
        return Decision(Step.NOTHING, None)
    ended = replace(budget, lister=None, since=None, again=False, again_at=None)
    if not listed or not budget.again:
        return Decision(Step.NOTHING, ended)
    origin = budget.again_at
    if pending(ended, now, limits):  # a list queued meanwhile covers those changes
        return Decision(Step.COVERED, ended)
    tokens = level(ended, now, limits)
    if tokens >= 1:
        queued = replace(ended, tokens=tokens - 1, at=now, due=now)
        return Decision(Step.LIST_NOW, queued, due=now, origin=origin)
    due = now + (1 - tokens) * limits.resync_refill_s
    reserved = replace(ended, tokens=tokens - 1, at=now, due=due)
    return Decision(Step.LIST_AT, reserved, due=due, origin=origin)


def withdrawn(budget: ListBudget, due: float) -> ListBudget | None:
    """The record without the queued list for `due`, whose message could not be sent (its
    token is given back); None when the record no longer shows it."""
    if budget.due != due:
        return None
    return replace(budget, tokens=budget.tokens + 1, due=None)
