"""Event Grid events → the clusters they affect (DESIGN section 3). Pure code.

Accepts one event in the Event Grid schema or the CloudEvents 1.0 schema, as a decoded
JSON object. Resource IDs compare case-insensitively. Unrelated events resolve to
nothing with a reason; malformed ones raise `MalformedEvent` so the caller logs and drops
them instead of retrying.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aksfw_core.errors import InputError
from aksfw_core.inventory import Inventory
from aksfw_core.resource_ids import ResourceId, parse_resource_id

WRITE = "Microsoft.Resources.ResourceWriteSuccess"
DELETE = "Microsoft.Resources.ResourceDeleteSuccess"
ACTION = "Microsoft.Resources.ResourceActionSuccess"
AKS_EVENT_PREFIX = "Microsoft.ContainerService."
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

# Actions that change what a cluster runs. Credential and list actions are left out on
# purpose: aksfw causes them itself when it reads a cluster.
CLUSTER_CHANGING_ACTIONS = frozenset({"start", "stop", "abort", "rotateclustercertificates"})


class MalformedEvent(InputError):
    """An event that cannot be read; it is logged and dropped, never retried."""


class ChangeKind(enum.Enum):
    """What to do for an affected cluster."""

    RESYNC = "resync"
    TOMBSTONE = "tombstone"
    """The cluster is gone: unregister all of its tags."""


@dataclass(frozen=True)
class ResourceEvent:
    """The parts of an event that resolution needs, whatever its schema."""

    id: str
    type: str
    subject: str
    topic: str
    """Event Grid `topic` or CloudEvents `source`."""
    operation: str | None = None
    """`data.operationName` of Resource Manager events."""


@dataclass(frozen=True)
class ClusterChange:
    """One affected cluster."""

    id: str
    kind: ChangeKind
    reason: str


@dataclass(frozen=True)
class Resolution:
    """What an event means for the monitored clusters."""

    clusters: tuple[ClusterChange, ...] = ()
    reason: str = ""
    """Why nothing is affected (empty when clusters are)."""
    unknown_cluster: str | None = None
    """A managed cluster the inventory does not know: refresh it and resolve again."""

    def as_json(self) -> dict[str, Any]:
        """The document `aksfw resolve-event` prints."""
        document: dict[str, Any] = {
            "clusters": [
                {"id": change.id, "action": change.kind.value, "reason": change.reason}
                for change in self.clusters
            ]
        }
        if not self.clusters:
            document["reason"] = self.reason
        return document


def read_event(document: object) -> ResourceEvent:
    """Read one event in either schema.

    Raises:
        MalformedEvent: not an event, naming what is wrong.
    """
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if not isinstance(document, Mapping):
        raise MalformedEvent("event: expected one JSON object")
    if "specversion" in document:
        if document.get("specversion") != "1.0":
            raise MalformedEvent("event: only CloudEvents specversion 1.0 is supported")
        type_key, topic_key = "type", "source"
    else:
        type_key, topic_key = "eventType", "topic"
    event_type = _text(document, type_key)
    data = document.get("data")
    if data is not None and not isinstance(data, Mapping) and event_type != VALIDATION:
        raise MalformedEvent("event: data must be an object")
    operation = data.get("operationName") if isinstance(data, Mapping) else None
    if operation is not None and not isinstance(operation, str):
        raise MalformedEvent("event: data.operationName must be a string")
    return ResourceEvent(
        id=str(document.get("id") or ""),
        type=event_type,
        subject=_optional_text(document, "subject"),
        topic=_optional_text(document, topic_key),
        operation=operation,
    )


def resolve(event: ResourceEvent, inventory: Inventory) -> Resolution:
    """Which monitored clusters the event affects, and how.

    Raises:
        MalformedEvent: a resource or system event whose resource ID cannot be read.
    """
    if event.type in (WRITE, DELETE, ACTION):
        return _resource_event(event, inventory)
    if event.type.startswith(AKS_EVENT_PREFIX):
        return _aks_event(event, inventory)
    if event.type == VALIDATION:
        return Resolution(reason="ignored: subscription validation (answered by the host)")
    return Resolution(reason=f"ignored: event type {event.type} does not affect clusters")


def resolve_event(document: object, inventory: Inventory) -> Resolution:
    """`read_event` then `resolve`.

    Raises:
        MalformedEvent: as those do.
    """
    return resolve(read_event(document), inventory)


def _resource_event(event: ResourceEvent, inventory: Inventory) -> Resolution:
    resource = _resource(event.subject, "subject")
    if event.type == ACTION and not _changes_cluster(event, resource):
        action = event.operation or "unnamed action"
        return Resolution(reason=f"ignored: {action} does not change a cluster")
    if resource.in_managed_cluster:
        return _cluster_event(event, resource, inventory)
    owner = inventory.owning_node_group(resource.group_id) if resource.group_id else None
    if owner is None:
        return Resolution(reason="ignored: not a monitored cluster or its node resource group")
    if (resource.provider or "").lower() != "microsoft.network":
        return Resolution(reason="ignored: not a network resource of a node resource group")
    reason = f"{resource.type} in node resource group {owner.node_resource_group} {_verb(event)}"
    return Resolution(clusters=(ClusterChange(owner.id, ChangeKind.RESYNC, reason),))


def _cluster_event(event: ResourceEvent, resource: ResourceId, inventory: Inventory) -> Resolution:
    known = inventory.find(resource.top_level_id())
    if event.type == DELETE and resource.is_managed_cluster:
        note = "" if known else " (not in the current inventory)"
        cluster_id = known.id if known else event.subject
        change = ClusterChange(cluster_id, ChangeKind.TOMBSTONE, f"cluster deleted{note}")
        return Resolution(clusters=(change,))
    if known is None:
        return Resolution(
            reason="managed cluster not in the inventory",
            unknown_cluster=resource.top_level_id(),
        )
    what = "cluster" if resource.is_managed_cluster else f"{resource.path[-2]} of the cluster"
    change = ClusterChange(known.id, ChangeKind.RESYNC, f"{what} {_verb(event)}")
    return Resolution(clusters=(change,))


def _aks_event(event: ResourceEvent, inventory: Inventory) -> Resolution:
    resource = _resource(event.topic, "source/topic")
    if not resource.is_managed_cluster:
        raise MalformedEvent(f"event: {event.type} does not come from a managed cluster")
    known = inventory.find(resource.top_level_id())
    if known is None:
        return Resolution(
            reason="managed cluster not in the inventory", unknown_cluster=event.topic
        )
    reason = event.type.removeprefix(AKS_EVENT_PREFIX)
    return Resolution(clusters=(ClusterChange(known.id, ChangeKind.RESYNC, reason),))


def _changes_cluster(event: ResourceEvent, resource: ResourceId) -> bool:
    if not resource.in_managed_cluster or not event.operation:
        return False
    parts = event.operation.lower().split("/")
    return len(parts) >= 3 and parts[-1] == "action" and parts[-2] in CLUSTER_CHANGING_ACTIONS


def _verb(event: ResourceEvent) -> str:
    return {WRITE: "written", DELETE: "deleted"}.get(event.type, "changed by an action")


def _resource(text: str, field: str) -> ResourceId:
    if not text:
        raise MalformedEvent(f"event: {field} is missing")
    try:
        return parse_resource_id(text)
    except InputError:
        raise MalformedEvent(f"event: {field} {text[:200]!r} is not a resource ID") from None


def _text(document: Mapping[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"event: {key} is missing or not a string")
    return value


def _optional_text(document: Mapping[str, Any], key: str) -> str:
    value = document.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedEvent(f"event: {key} must be a string")
    return value
