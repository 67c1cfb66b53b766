"""The list budgets of every cluster (`pipeline.list_budget` decides), kept across
instances as blobs `claims/lists/<sub>/<rg>/<cluster>` in the state container: the record
as blob metadata, each change read and written under an ETag condition (a write another
instance beat is read and decided again), so one property read per change, and a write
only when the record changes.

A process remembers a list queued for later (a slot) until its time: until then the
queue cannot deliver it, so every change meanwhile is covered without a read; a storm past
the burst costs each instance about one read per slot.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from aksfw_core.errors import AksfwError, InputError, Retryable
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.pipeline.list_budget import (
    EARLY_S,
    Decision,
    ListBudget,
    Step,
    on_begin,
    on_change,
    on_end,
    withdrawn,
)
from aksfw_core.pipeline.state import cluster_key
from aksfw_core.pipeline.storage import StorageAccount, write_marker

log = logging.getLogger(__name__)

_ATTEMPTS = 8
"""Conditional writes one decision tries before it gives up (each lost one means another
instance wrote the record a moment ago)."""


@dataclass(frozen=True)
class Begun:
    """Whether a resync lists the cluster now, and as whom (None: the record is not kept,
    e.g. an ID that is no cluster's; `ListBudgets.end` then does nothing); when it does
    not, the decision that stands instead (the change is covered or asks for one more)."""

    lists: bool
    lister: str | None
    decision: Decision | None = None


class ListBudgets:
    """Every cluster's list budget in one storage account."""

    def __init__(
        self,
        account: StorageAccount,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._account = account
        self._container = account.container
        self._limits = limits or Limits()
        self._clock = clock
        self._slot_until: dict[str, float] = {}
        """Per cluster, a list queued for this time (a slot): changes before it are
        covered without a read."""

    def change(self, cluster_id: str) -> Decision:
        """A change for the cluster arrived (an event): what to do, written for every
        instance. LIST_NOW (or LIST_AT): the caller queues the list, and calls `withdraw`
        if it cannot.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = _name(cluster_id)
        now = self._clock()
        if now < self._slot_until.get(name, 0.0) - EARLY_S:
            return Decision(Step.COVERED, None)
        return self._decide(name, lambda budget, now: on_change(budget, now, self._limits))

    def withdraw(self, cluster_id: str, decision: Decision) -> None:
        """The list `decision` queued could not be sent: take it back, so the next change
        queues one (best effort: a record that cannot be written is believed no longer
        than `list_budget.PENDING_SLACK_S` past its time)."""
        if decision.due is None:
            return
        due = decision.due
        name = _name(cluster_id)
        self._slot_until.pop(name, None)
        try:
            self._decide(
                name,
                lambda budget, now: Decision(
                    Step.NOTHING, None if budget is None else withdrawn(budget, due)
                ),
            )
        except AksfwError as error:
            log_event(log, "resync.budget_not_withdrawn", logging.WARNING, error=str(error))

    def begin(self, cluster_id: str, follow_up_of: float | None = None) -> Begun:
        """A resync of the cluster is about to list it: when it is the list changes asked
        for (a list queued for them is due), note it as the list in flight; any other (the
        timer's, a manual one) costs one read. `follow_up_of` (a follow-up's time) makes it
        a change first: covered by a list queued or begun since then, or one more after the
        list in flight, it lists nothing; else it is a list changes asked for.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        try:
            name = _name(cluster_id)
        except InputError:
            return Begun(lists=True, lister=None)  # the resync says what it is
        lister = uuid.uuid4().hex

        def decide(budget: ListBudget | None, now: float) -> Decision:
            if follow_up_of is not None:
                asked = on_change(budget, now, self._limits, changed_at=follow_up_of)
                if asked.step is not Step.LIST_NOW:
                    return asked
                budget = asked.budget
            return Decision(Step.LIST_NOW, on_begin(budget, lister, now, self._limits))

        decision = self._decide(name, decide)
        if decision.step is not Step.LIST_NOW:
            return Begun(lists=False, lister=None, decision=decision)
        noted = decision.budget is not None  # else a list nobody's change asked for
        return Begun(lists=True, lister=lister if noted else None)

    def end(self, cluster_id: str, begun: Begun, listed: bool) -> Decision:
        """The list `begun` ended (`listed`: it read the cluster): what follows, written for
        every instance. LIST_NOW or LIST_AT: the caller queues one more list.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        lister = begun.lister
        if lister is None:
            return Decision(Step.NOTHING, None)
        name = _name(cluster_id)
        return self._decide(
            name, lambda budget, now: on_end(budget, lister, now, self._limits, listed=listed)
        )

    def _decide(
        self, name: str, decide: Callable[[ListBudget | None, float], Decision]
    ) -> Decision:
        """Read the record, decide, and write what the decision says under the ETag the
        read returned; a write another instance beat is read and decided again.

        Raises:
            Retryable: the record kept changing; AuthError, NonRetryable: Storage failed.
        """
        blob = self._container.get_blob_client(f"claims/lists/{name}")
        decided: list[Decision] = []

        def attempt() -> None:
            for _ in range(_ATTEMPTS):
                try:
                    properties = blob.get_blob_properties()
                except ResourceNotFoundError:
                    properties = None
                now = self._clock()
                stored = None if properties is None else _read(properties.metadata or {})
                decision = decide(stored, now)
                budget = decision.budget
                if (
                    budget is not None
                    and budget != stored
                    and not write_marker(blob, properties, _written(budget))
                ):
                    continue  # another instance wrote it a moment ago: decide again
                self._remember(name, decision.budget or stored, now)
                decided.append(decision)
                return
            raise Retryable(f"claims/lists/{name} kept changing: try again")

        self._account.recreating(f"list budget {name}", attempt)
        return decided[0]

    def _remember(self, name: str, budget: ListBudget | None, now: float) -> None:
        if budget is not None and budget.due is not None and budget.due > now + EARLY_S:
            self._slot_until[name] = budget.due
        else:
            self._slot_until.pop(name, None)


def _name(cluster_id: str) -> str:
    """Raises InputError for an ID that is no managed cluster's."""
    return cluster_key(cluster_id)


_FIELDS = ("tokens", "at", "due", "lister", "since", "again", "againat")


def _written(budget: ListBudget) -> dict[str, str]:
    """The record as blob metadata (ASCII; absent fields left out)."""
    values: dict[str, object] = {
        "tokens": budget.tokens,
        "at": budget.at,
        "due": budget.due,
        "lister": budget.lister,
        "since": budget.since,
        "again": "1" if budget.again else None,
        "againat": budget.again_at,
    }
    return {
        key: value if isinstance(value, str) else repr(value)
        for key, value in values.items()
        if value is not None
    }


def _read(metadata: Mapping[str, str]) -> ListBudget | None:
    """The record from blob metadata; None (a full bucket) when it is unreadable."""
    fields = {key.lower(): value for key, value in metadata.items() if key.lower() in _FIELDS}
    try:
        return ListBudget(
            tokens=_number(fields["tokens"]) or 0.0,
            at=_number(fields["at"]) or 0.0,
            due=_number(fields.get("due")),
            lister=fields.get("lister"),
            since=_number(fields.get("since")),
            again=fields.get("again") == "1",
            again_at=_number(fields.get("againat")),
        )
    except (KeyError, ValueError):
        return None


def _number(text: str | None) -> float | None:
    """A finite number, or ValueError (a record that says `inf` is unreadable)."""
    if text is None:
        return None
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {text!r}")
    return number
