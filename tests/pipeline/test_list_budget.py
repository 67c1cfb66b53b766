"""When changes make a cluster listed, as tables (`aksfw_core.pipeline.list_budget`): an
idle cluster's change lists at once, a list queued covers a change, a list in flight gets
exactly one more after it, and past the burst that one waits for the bucket's next token."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aksfw_core.limits import Limits
from aksfw_core.pipeline.list_budget import (
    PENDING_SLACK_S,
    ListBudget,
    Step,
    level,
    on_begin,
    on_change,
    on_end,
    withdrawn,
)

LIMITS = Limits(resync_burst_lists=3, resync_refill_s=2.0)
NOW = 10_000.0
IN_FLIGHT = ListBudget(tokens=2.0, at=NOW - 0.1, lister="a", since=NOW - 0.1)


@pytest.mark.parametrize(
    ("budget", "changed_at", "step", "written"),
    [
        # Idle: listed at once, taking a token when there is one, never waiting for one.
        (None, None, Step.LIST_NOW, ListBudget(tokens=2.0, at=NOW, due=NOW)),
        (ListBudget(0.0, NOW), None, Step.LIST_NOW, ListBudget(tokens=0.0, at=NOW, due=NOW)),
        (ListBudget(0.5, NOW), None, Step.LIST_NOW, ListBudget(tokens=0.0, at=NOW, due=NOW)),
        (ListBudget(0.0, NOW - 4), None, Step.LIST_NOW, ListBudget(tokens=1.0, at=NOW, due=NOW)),
        (ListBudget(3.0, NOW - 60), None, Step.LIST_NOW, ListBudget(tokens=2.0, at=NOW, due=NOW)),
        # A list queued and not begun covers it, whether due now or at a slot ahead.
        (ListBudget(2.0, NOW - 1, due=NOW - 1), None, Step.COVERED, None),
        (ListBudget(-0.5, NOW, due=NOW + 1.5), None, Step.COVERED, None),
        # ... unless it is long overdue (a lost message): then the change lists.
        (
            ListBudget(2.0, NOW - 61, due=NOW - PENDING_SLACK_S - 1),
            None,
            Step.LIST_NOW,
            ListBudget(tokens=2.0, at=NOW, due=NOW),
        ),
        # A list in flight: one more after it, asked for once.
        (IN_FLIGHT, None, Step.ONE_MORE, replace(IN_FLIGHT, again=True, again_at=NOW)),
        (replace(IN_FLIGHT, again=True, again_at=NOW - 0.05), None, Step.COVERED, None),
        # A follow-up due before the list in flight began is covered by it; one due after
        # it is not.
        (IN_FLIGHT, NOW - 0.2, Step.COVERED, None),
        (IN_FLIGHT, NOW - 0.05, Step.ONE_MORE, replace(IN_FLIGHT, again=True, again_at=NOW)),
        # A list begun longer ago than a list may take: its instance died, not believed.
        (
            replace(IN_FLIGHT, at=NOW, since=NOW - LIMITS.kube_list_deadline_s),
            None,
            Step.LIST_NOW,
            ListBudget(tokens=1.0, at=NOW, due=NOW),
        ),
    ],
)
def test_a_change_lists_at_once_unless_a_list_queued_or_in_flight_covers_it(
    budget, changed_at, step, written
):
    decision = on_change(budget, NOW, LIMITS, changed_at=changed_at)
    assert decision.step is step
    assert decision.budget == written
    if step is Step.LIST_NOW:
        assert decision.due == NOW


@pytest.mark.parametrize(
    ("budget", "listed", "step", "due", "tokens"),
    [
        # Nothing arrived during the list: the record is cleared, nothing queued.
        (IN_FLIGHT, True, Step.NOTHING, None, 2.0),
        # Something did: one more list, at once while the bucket holds a token ...
        (replace(IN_FLIGHT, again=True, again_at=NOW - 0.05), True, Step.LIST_NOW, NOW, 1.05),
        # ... else at the bucket's next token (the slot is reserved now).
        (
            replace(IN_FLIGHT, tokens=0.0, at=NOW, again=True, again_at=NOW - 0.05),
            True,
            Step.LIST_AT,
            NOW + 2.0,
            -1.0,
        ),
        (
            replace(IN_FLIGHT, tokens=0.5, at=NOW, again=True, again_at=NOW - 0.05),
            True,
            Step.LIST_AT,
            NOW + 1.0,
            -0.5,
        ),
        # A failed list: its message is tried again and lists again, nothing more.
        (replace(IN_FLIGHT, again=True, again_at=NOW - 0.05), False, Step.NOTHING, None, 2.0),
        # A list queued meanwhile covers the changes.
        (
            replace(IN_FLIGHT, due=NOW + 1.0, again=True, again_at=NOW - 0.05),
            True,
            Step.COVERED,
            None,
            2.0,
        ),
    ],
)
def test_a_change_during_a_list_causes_exactly_one_more_within_the_budget(
    budget, listed, step, due, tokens
):
    decision = on_end(budget, "a", NOW, LIMITS, listed=listed)
    assert decision.step is step
    assert decision.due == pytest.approx(due) if due is not None else decision.due is None
    assert decision.budget is not None
    assert decision.budget.lister is None and not decision.budget.again
    assert decision.budget.tokens == pytest.approx(tokens)
    if step in (Step.LIST_NOW, Step.LIST_AT):
        assert decision.origin == NOW - 0.05  # the lag runs from the first change
        assert decision.budget.due == pytest.approx(due)


def test_the_end_of_a_list_another_one_took_over_from_changes_nothing():
    taken_over = replace(IN_FLIGHT, lister="b", again=True, again_at=NOW)
    decision = on_end(taken_over, "a", NOW, LIMITS, listed=True)
    assert (decision.step, decision.budget) == (Step.NOTHING, None)
    assert on_end(None, "a", NOW, LIMITS, listed=True).budget is None


@pytest.mark.parametrize("due", [NOW - 3, NOW, NOW + 0.5])
def test_a_list_that_begins_when_a_queued_list_is_due_is_that_list_and_covers_earlier_changes(
    due,
):
    before = ListBudget(1.0, NOW - 1, due=due, lister="a", since=NOW - 1, again=True)
    begun = on_begin(before, "b", NOW, LIMITS)
    assert begun is not None
    assert (begun.lister, begun.since, begun.again, begun.again_at) == ("b", NOW, False, None)
    assert begun.due is None
    assert begun.tokens == 1.0  # the list was paid for when it was queued


@pytest.mark.parametrize(
    "budget",
    [
        None,  # nothing ever asked for a list
        ListBudget(2.0, NOW),  # idle
        ListBudget(-0.5, NOW, due=NOW + 1.5),  # a slot ahead: changes wait for that list
        ListBudget(2.0, NOW, due=NOW - PENDING_SLACK_S - 1),  # a list queued and lost
        IN_FLIGHT,  # another list, asked for by changes, is in flight
    ],
)
def test_a_list_no_change_asked_for_leaves_the_budget_alone(budget):
    # The timer's resyncs, a manual one: one read each, no write.
    assert on_begin(budget, "b", NOW, LIMITS) is None


def test_a_queued_list_that_could_not_be_sent_is_given_back():
    queued = ListBudget(tokens=1.0, at=NOW, due=NOW)
    assert withdrawn(queued, NOW) == ListBudget(tokens=2.0, at=NOW)
    assert withdrawn(queued, NOW - 5) is None  # another list was queued since


def test_the_bucket_refills_one_list_per_refill_period_up_to_the_burst():
    empty = ListBudget(tokens=-1.0, at=NOW)
    assert level(empty, NOW, LIMITS) == -1.0
    assert level(empty, NOW + 2, LIMITS) == 0.0
    assert level(empty, NOW + 5, LIMITS) == 1.5
    assert level(empty, NOW + 3600, LIMITS) == 3.0
    assert level(empty, NOW - 10, LIMITS) == -1.0  # a clock that steps back earns nothing


def simulate(changes: list[float], list_s: float) -> list[float]:
    """Changes at the given times for one cluster, lists taking `list_s` each and begun as
    soon as they are due (one consumer): when each list began."""
    budget: ListBudget | None = None
    began: list[float] = []
    queued: list[float] = []  # the due times of lists queued, in order
    ends: float | None = None
    events = sorted(changes)
    index = 0
    while index < len(events) or queued or ends is not None:
        upcoming = [
            t
            for t in (
                events[index] if index < len(events) else None,
                queued[0] if queued and ends is None else None,
                ends,
            )
            if t is not None
        ]
        now = min(upcoming)
        if ends is not None and now == ends:
            decision = on_end(budget, "x", now, LIMITS, listed=True)
            budget = decision.budget or budget
            ends = None
            if decision.step in (Step.LIST_NOW, Step.LIST_AT):
                queued.append(decision.due)
        elif queued and ends is None and now == queued[0]:
            queued.pop(0)
            budget = on_begin(budget, "x", now, LIMITS) or budget
            began.append(now)
            ends = now + list_s
        else:
            decision = on_change(budget, now, LIMITS)
            budget = decision.budget or budget
            index += 1
            if decision.step is Step.LIST_NOW:
                queued.append(now)
    return began


def test_a_storm_costs_the_burst_and_then_one_list_per_refill_period():
    storm = [i * 0.01 for i in range(1000)]  # 1,000 changes in 10 s
    began = simulate(storm, list_s=0.1)
    assert len(began) <= LIMITS.resync_burst_lists + 10 / LIMITS.resync_refill_s + 1
    assert began[-1] >= storm[-1]  # the last change is listed after it arrived


def test_changes_one_after_another_each_list_at_once():
    # 20 changes, each after the last one's list ended: never a wait, however many.
    sequence = [i * 0.15 for i in range(20)]
    began = simulate(sequence, list_s=0.1)
    assert began == sequence
