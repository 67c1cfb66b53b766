"""The one gate an uninstall closes: while `POST /api/uninstall` runs (and for
`limits.uninstall_pause_s` after, unless the app goes first), nothing may register tags again
behind its tombstones. Every trigger asks the gate before it queues or applies work;
which work goes on anyway is one pure decision (`proceeds_while_uninstalling`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from aksfw_core.errors import AksfwError
from aksfw_core.logs import log_event
from aksfw_core.pipeline.coordination import Coordination

log = logging.getLogger(__name__)

_CLAIM = "uninstall"


class Work(StrEnum):
    """What a trigger is about to do; the value names its log event (`<value>.held`)."""

    EVENT_RESYNC = "event"
    TIMER_FAN_OUT = "timer"
    RESYNC = "resync"
    SNAPSHOT = "apply"
    TOMBSTONE = "tombstone"


class Uninstalling(AksfwError):
    """A resync was asked for while an uninstall pauses resyncs."""


def proceeds_while_uninstalling(work: Work) -> bool:
    """Only tombstones: they remove tags, which is what the uninstall is for."""
    return work is Work.TOMBSTONE


def iso(seconds: float | None) -> str | None:
    """Epoch seconds as the reports and logs write them (UTC, whole seconds), or None."""
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


class UninstallGate:
    """Whether work may go on, from the uninstall claim every instance shares."""

    def __init__(
        self, coordination: Coordination, clock: Callable[[], float], pause_s: float
    ) -> None:
        self._coordination = coordination
        self._clock = clock
        self._pause_s = pause_s

    def paused_until(self) -> float | None:
        """Until when an uninstall pauses work (epoch seconds), or None.

        Raises:
            AuthError, Retryable, NonRetryable: Storage could not be read.
        """
        return self._coordination.taken_until(_CLAIM, self._pause_s, now=self._clock())

    def pause(self) -> float:
        """Pause work on every instance for `limits.uninstall_pause_s` from now (extending
        an earlier pause); returns until when.

        Raises:
            AuthError, Retryable, NonRetryable: Storage could not be written.
        """
        until = self._clock() + self._pause_s
        self._coordination.take_until(_CLAIM, until)
        return until

    def admits(self, work: Work, **fields: object) -> bool:
        """Whether `work` may go on now; when not, logs `<work>.held` with `fields`.

        Raises:
            AuthError, Retryable, NonRetryable: Storage could not be read.
        """
        if proceeds_while_uninstalling(work):
            return True
        until = self.paused_until()
        if until is None:
            return True
        log_event(log, f"{work.value}.held", logging.INFO, until=iso(until), **fields)
        return False

    def refuse_while_paused(self) -> None:
        """For a request a person made: refuse it, saying until when.

        Raises:
            Uninstalling: an uninstall pauses resyncs.
            AuthError, Retryable, NonRetryable: Storage could not be read.
        """
        until = self.paused_until()
        if until is not None:
            raise Uninstalling(f"uninstalling: resyncs are held back until {iso(until)}")
