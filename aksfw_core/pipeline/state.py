"""What aksfw remembers per (cluster, target), as plain data with a JSON form. Pure code.

`AppliedState` is the last snapshot applied to a target (the applier diffs against it);
`StateSummary` is everything about it but the tags, small enough to ride along as the
state blob's metadata, so the timer, the status endpoint and a tombstone read a listing
instead of every cluster's tags; `EnqueuedMark` the last snapshot queued for a target (so
an unchanged resync queues nothing), kept as metadata too.

Blob metadata values must be ASCII: text that may hold anything else (a resource group
name, an error) is percent-encoded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from aksfw_core.errors import InputError, NonRetryable
from aksfw_core.jsondoc import load_json
from aksfw_core.rules.model import IpTags, ip_tags_json
from aksfw_core.rules.resource_ids import managed_cluster_id


@dataclass(frozen=True)
class AppliedState:
    """The state aksfw last left on one target for one cluster."""

    cluster_id: str
    tag_name: str
    target: str
    version: int
    """Version of the snapshot applied (ns since the epoch)."""
    fingerprint: str
    tags: IpTags = field(default_factory=dict)
    applied_at: float = 0.0
    """When it was applied (seconds since the epoch)."""
    dirty: bool = False
    """Panorama refused part of it: the next apply reads Panorama instead of trusting this."""
    last_error: str | None = None
    last_error_at: float | None = None
    missing_since: float | None = None
    """When the timer first found the cluster no longer monitored (seconds since the epoch)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster_id,
            "tagName": self.tag_name,
            "target": self.target,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "appliedAt": self.applied_at,
            "dirty": self.dirty,
            "lastError": self.last_error,
            "lastErrorAt": self.last_error_at,
            "missingSince": self.missing_since,
            "tags": ip_tags_json(self.tags),
        }


@dataclass(frozen=True)
class EnqueuedMark:
    """The last snapshot queued for one (cluster, target)."""

    cluster_id: str
    target: str
    version: int
    fingerprint: str
    enqueued_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster_id,
            "target": self.target,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "enqueuedAt": self.enqueued_at,
        }


@dataclass(frozen=True)
class StateSummary:
    """An `AppliedState` without its tags: what the timer, the status endpoint and a
    tombstone need, and what the resyncer compares with."""

    cluster_id: str
    """The cluster's resource ID as Resource Manager spells it."""
    tag_name: str
    target: str
    version: int
    fingerprint: str
    applied_at: float
    ips: int
    """IP addresses the applied state registers."""
    tags: int
    """(IP, tag) registrations the applied state holds."""
    dirty: bool = False
    last_error: str | None = None
    """The last error, cut to `MAX_ERROR_CHARS` characters."""
    last_error_at: float | None = None
    missing_since: float | None = None

    @classmethod
    def of(cls, state: AppliedState) -> StateSummary:
        return cls(
            cluster_id=state.cluster_id,
            tag_name=state.tag_name,
            target=state.target,
            version=state.version,
            fingerprint=state.fingerprint,
            applied_at=state.applied_at,
            ips=len(state.tags),
            tags=sum(len(tags) for tags in state.tags.values()),
            dirty=state.dirty,
            last_error=_cut(state.last_error),
            last_error_at=state.last_error_at,
            missing_since=state.missing_since,
        )


SUMMARY_SCHEMA = "1"
"""Written as `summary` in the metadata; a blob without it predates summaries."""
MAX_ERROR_CHARS = 300
"""Characters of the last error a summary keeps (the state blob keeps all of it)."""
_MAX_ERROR_METADATA = 1200  # percent-encoded: the whole metadata stays far under 8 KiB


def summary_metadata(summary: StateSummary) -> dict[str, str]:
    """The summary as blob metadata (names are lower-case identifiers, values ASCII)."""
    metadata = {
        "summary": SUMMARY_SCHEMA,
        "cluster": _text(summary.cluster_id),
        "tagname": _text(summary.tag_name),
        "target": _text(summary.target),
        "version": str(summary.version),
        "appliedat": repr(float(summary.applied_at)),
        "ips": str(summary.ips),
        "tags": str(summary.tags),
        "dirty": "true" if summary.dirty else "false",
    }
    if summary.fingerprint:  # none after a first apply that failed; no empty values
        metadata["fingerprint"] = _text(summary.fingerprint)
    error = _cut(summary.last_error)
    if error:
        while len(_text(error)) > _MAX_ERROR_METADATA:
            error = error[: len(error) // 2]
        metadata["lasterror"] = _text(error)
    for name, value in (
        ("lasterrorat", summary.last_error_at),
        ("missingsince", summary.missing_since),
    ):
        if value is not None:
            metadata[name] = repr(float(value))
    return metadata


def summary_from_metadata(metadata: Mapping[str, str] | None) -> StateSummary | None:
    """The summary a blob's metadata holds, or None when it holds none (a blob written
    before summaries existed) or an unreadable one: the caller then reads the blob."""
    found = {name.lower(): value for name, value in (metadata or {}).items()}
    if found.get("summary") != SUMMARY_SCHEMA:
        return None
    try:
        error = found.get("lasterror")
        return StateSummary(
            cluster_id=unquote(found["cluster"]),
            tag_name=unquote(found["tagname"]),
            target=unquote(found["target"]),
            version=int(found["version"]),
            fingerprint=unquote(found.get("fingerprint", "")),
            applied_at=float(found["appliedat"]),
            ips=int(found["ips"]),
            tags=int(found["tags"]),
            dirty=found["dirty"] == "true",
            last_error=unquote(error) if error is not None else None,
            last_error_at=_optional_float(found.get("lasterrorat")),
            missing_since=_optional_float(found.get("missingsince")),
        )
    except (KeyError, ValueError):
        return None


def mark_metadata(mark: EnqueuedMark) -> dict[str, str]:
    """The mark as blob metadata."""
    return {
        "mark": SUMMARY_SCHEMA,
        "cluster": _text(mark.cluster_id),
        "target": _text(mark.target),
        "version": str(mark.version),
        "fingerprint": _text(mark.fingerprint),
        "enqueuedat": repr(float(mark.enqueued_at)),
    }


def mark_from_metadata(metadata: Mapping[str, str] | None) -> EnqueuedMark | None:
    """The mark a blob's metadata holds, or None (an older mark counts as none: the
    snapshot is queued once more)."""
    found = {name.lower(): value for name, value in (metadata or {}).items()}
    if found.get("mark") != SUMMARY_SCHEMA:
        return None
    try:
        return EnqueuedMark(
            cluster_id=unquote(found["cluster"]),
            target=unquote(found["target"]),
            version=int(found["version"]),
            fingerprint=unquote(found["fingerprint"]),
            enqueued_at=float(found["enqueuedat"]),
        )
    except (KeyError, ValueError):
        return None


def applied_from_json(data: bytes) -> AppliedState:
    """Raises NonRetryable when the stored state is unreadable (it needs an operator)."""
    document = _load(data, "applied state")
    try:
        return AppliedState(
            cluster_id=str(document["cluster"]),
            tag_name=str(document["tagName"]),
            target=str(document["target"]),
            version=int(document["version"]),
            fingerprint=str(document["fingerprint"]),
            tags={ip: frozenset(tags) for ip, tags in dict(document["tags"]).items()},
            applied_at=float(document.get("appliedAt") or 0.0),
            dirty=bool(document.get("dirty", False)),
            last_error=document.get("lastError"),
            last_error_at=document.get("lastErrorAt"),
            missing_since=document.get("missingSince"),
        )
    except (KeyError, TypeError, ValueError):
        raise NonRetryable("stored applied state is malformed") from None


def state_key(cluster_id: str, target: str) -> str:
    """Blob path for a (cluster, target): `<sub>/<group>/<cluster>/<target>`, lower-cased."""
    return f"{cluster_key(cluster_id)}/{target.lower()}"


def cluster_key(cluster_id: str) -> str:
    """Blob path prefix of a cluster's targets: `<sub>/<group>/<cluster>`, lower-cased.

    Raises:
        InputError: `cluster_id` is not a managed cluster's resource ID.
    """
    resource = managed_cluster_id(cluster_id)
    group = (resource.resource_group or "").lower()
    return f"{resource.subscription}/{group}/{resource.path[1].lower()}"


def to_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _load(data: bytes, what: str) -> Mapping[str, Any]:
    try:
        document = load_json(data, f"stored {what}")
    except InputError as error:
        raise NonRetryable(str(error)) from None
    if not isinstance(document, dict):
        raise NonRetryable(f"stored {what} is not an object")
    return document


def _text(value: str) -> str:
    """ASCII for a metadata value: percent-encoded, readable for the usual characters."""
    return quote(value, safe="/:.,;()[]{}'=@!*+-_~")


def _cut(error: str | None) -> str | None:
    return error[:MAX_ERROR_CHARS] if error is not None else None


def _optional_float(value: str | None) -> float | None:
    return float(value) if value is not None else None


@dataclass(frozen=True)
class HeldBack:
    """A cluster whose last resync would have removed most of its tags and was held back
    until a later, independent list confirms it (`pipeline.snapshots`)."""

    cluster_id: str
    fingerprint: str
    """The wanted tags the held resync computed: a confirmation must compute the same."""
    since: float
    """When the cluster was first held back (seconds since the epoch)."""
    held_at: float
    """When it was last held back, i.e. when its latest confirmation was queued."""
    pairs_to_remove: int
    """IP-tag pairs the removal would take away, at least (on the target losing most)."""
    confirmations: int
    """Confirmations queued since `since`, to bound a chain of disagreeing lists."""


def held_metadata(held: HeldBack) -> dict[str, str]:
    """The hold as blob metadata."""
    return {
        "held": SUMMARY_SCHEMA,
        "cluster": _text(held.cluster_id),
        "fingerprint": _text(held.fingerprint),
        "since": repr(float(held.since)),
        "heldat": repr(float(held.held_at)),
        "pairs": str(held.pairs_to_remove),
        "confirmations": str(held.confirmations),
    }


def held_from_metadata(metadata: Mapping[str, str] | None) -> HeldBack | None:
    """The hold a blob's metadata holds, or None when it holds none readable."""
    found = {name.lower(): value for name, value in (metadata or {}).items()}
    if found.get("held") != SUMMARY_SCHEMA:
        return None
    try:
        return HeldBack(
            cluster_id=unquote(found["cluster"]),
            fingerprint=unquote(found["fingerprint"]),
            since=float(found["since"]),
            held_at=float(found["heldat"]),
            pairs_to_remove=int(found["pairs"]),
            confirmations=int(found["confirmations"]),
        )
    except (KeyError, ValueError):
        return None
