"""Which clusters discovery monitors, and why it leaves one out: the discovery tag's match
(tag name and value compared case-insensitively) and the reasons `aksfw clusters` gives
for a cluster, or a whole subscription, it skipped. Pure code: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

_SHOWN_CHARS = 80
"""A tag value from Azure is data: at most this much of it goes into a reason."""


class SkipReason(StrEnum):
    """Why a cluster (or a subscription) that discovery looked at is not monitored."""

    NO_TAG = "no-discovery-tag"
    """The cluster does not carry the discovery tag, and `clusters[]` does not list it."""
    TAG_VALUE = "tag-value-differs"
    """It carries the tag's name with another value than `discovery.tag` asks for."""
    NO_ACCESS = "no-access"
    """Resource Manager refused the read (HTTP 403): a subscription's list, or a listed
    cluster."""
    NOT_FOUND = "not-found"
    """Resource Manager does not know it (HTTP 404): a listed cluster, or a subscription."""


@dataclass(frozen=True)
class Skipped:
    """A cluster, or a whole subscription, that discovery looked at and left out."""

    id: str
    """The cluster's resource ID, or `/subscriptions/<id>` for a subscription whose
    clusters could not be listed."""
    reason: SkipReason
    detail: str
    """For a person: what was found, and what would have made it monitored."""

    def as_json(self) -> dict[str, str]:
        """`{"id", "reason", "detail"}`, as `aksfw clusters` prints it."""
        return {"id": self.id, "reason": self.reason.value, "detail": self.detail}


def discovery_tag_skip(
    tags: object, key: str | None, value: str | None
) -> tuple[SkipReason, str] | None:
    """None when a cluster whose Azure tags are `tags` carries the discovery tag (`key`,
    and `value` too unless it is None); otherwise why it does not, and in words.

    The names and values of Azure tags compare case-insensitively, as Resource Manager
    compares tag names. Anything but a mapping is a cluster without tags.
    """
    wanted = key if value is None else f"{key}={value}"
    if not key:
        return SkipReason.NO_TAG, "not in clusters[], and discovery by tag is off (discovery.tag)"
    found = (
        [str(v) for k, v in tags.items() if str(k).casefold() == key.casefold()]
        if isinstance(tags, Mapping)
        else []
    )
    if not found:
        return SkipReason.NO_TAG, f"no tag {key} (the discovery tag is {wanted})"
    if value is None or any(v.casefold() == value.casefold() for v in found):
        return None
    shown = found[0][:_SHOWN_CHARS]
    return SkipReason.TAG_VALUE, f"its tag is {key}={shown}, the discovery tag is {wanted}"


def skip_for_refusal(status: int | None) -> SkipReason | None:
    """The reason to report, instead of failing, when Resource Manager answers a read of
    one subscription or one listed cluster with `status`; None when the failure must stop
    the whole read (401: the credential itself is refused; throttling and server faults).
    """
    if status == 403:
        return SkipReason.NO_ACCESS
    if status == 404:
        return SkipReason.NOT_FOUND
    return None
