"""What aksfw remembers per (cluster, target), as plain data with a JSON form. Pure code.

`AppliedState` is the last snapshot applied to a target (the applier diffs against it);
`EnqueuedMark` the last snapshot queued for it (so an unchanged resync queues nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aksfw_core.errors import InputError, NonRetryable
from aksfw_core.jsondoc import load_json
from aksfw_core.model import IpTags, ip_tags_json
from aksfw_core.resource_ids import managed_cluster_id


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


def enqueued_from_json(data: bytes) -> EnqueuedMark:
    """Raises NonRetryable when the stored mark is unreadable."""
    document = _load(data, "enqueued mark")
    try:
        return EnqueuedMark(
            cluster_id=str(document["cluster"]),
            target=str(document["target"]),
            version=int(document["version"]),
            fingerprint=str(document["fingerprint"]),
            enqueued_at=float(document["enqueuedAt"]),
        )
    except (KeyError, TypeError, ValueError):
        raise NonRetryable("stored enqueued mark is malformed") from None


def state_key(cluster_id: str, target: str) -> str:
    """Blob path for a (cluster, target): `<sub>/<group>/<cluster>/<target>`, lower-cased."""
    resource = managed_cluster_id(cluster_id)
    group = (resource.resource_group or "").lower()
    return f"{resource.subscription}/{group}/{resource.path[1].lower()}/{target.lower()}"


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
