"""The one gate an uninstall closes: while `POST /api/uninstall` runs (and for
`limits.uninstall_pause_s` after, unless the app goes first), nothing may register tags again
behind its tombstones. Every trigger asks the gate before it queues or applies work;
which work goes on anyway is one pure decision (`proceeds_while_uninstalling`).

The pause can be ended early (`cancel`, `POST /api/uninstall {"cancel": true}`): every
instance re-reads it at least every `coordination.TRUST_S` (60 s), so a cancel reaches
them all within a minute. The claim keeps who paused and since when (`Pause`), and who
cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from aksfw_core.errors import AksfwError
from aksfw_core.logs import log_event
from aksfw_core.pipeline.coordination import Coordination, Taken

log = logging.getLogger(__name__)

_CLAIM = "uninstall"
_BY_CHARS = 200


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


@dataclass(frozen=True)
class Pause:
    """An uninstall's pause: until when, since when and by whom (as the request said:
    `functions.caller`); `since` and `by` are None for a pause written before they were
    kept."""

    until: float
    since: float | None
    by: str | None

    @classmethod
    def of(cls, taken: Taken) -> Pause:
        since = taken.note.get("since")
        try:
            started = float(since) if since is not None else None
        except ValueError:
            started = None
        return cls(taken.until, started, taken.note.get("by"))


def note_text(text: str) -> str:
    """`text` as a claim's note can hold it (blob metadata is an HTTP header value):
    printable ASCII, other characters escaped, at most `_BY_CHARS` characters."""
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    printable = "".join(c if " " <= c <= "~" else repr(c)[1:-1] for c in escaped)
    return printable.strip()[:_BY_CHARS] or "unknown"


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

    def pause(self, by: str) -> Pause:
        """Pause work on every instance for `limits.uninstall_pause_s` from now (extending
        an earlier pause, whose `since` and `by` it replaces); returns the pause.

        Raises:
            AuthError, Retryable, NonRetryable: Storage could not be written.
        """
        now = self._clock()
        pause = Pause(now + self._pause_s, now, note_text(by))
        note = {"since": repr(now), "by": pause.by or ""}
        self._coordination.take_until(_CLAIM, pause.until, note)
        return pause

    def current(self) -> Pause | None:
        """The pause as Storage holds it now (no memo), or None.

        Raises:
            AuthError, Retryable, NonRetryable: Storage could not be read.
        """
        taken = self._coordination.taken(_CLAIM, self._pause_s, now=self._clock())
        return Pause.of(taken) if taken is not None else None

    def cancel(self, by: str) -> Pause | None:
        """End the pause now: at once in this process, within `coordination.TRUST_S` on
        every other instance. Returns the pause it ended, or None when none ran.

        Raises:
            AuthError, Retryable, NonRetryable: Storage could not be read or written.
        """
        note = {"cancelledBy": note_text(by), "cancelledAt": repr(self._clock())}
        taken = self._coordination.release(_CLAIM, self._pause_s, note)
        return Pause.of(taken) if taken is not None else None

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
