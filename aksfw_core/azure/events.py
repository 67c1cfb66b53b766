"""Event Grid events → the clusters they affect (DESIGN section 3). Pure code.

Accepts one event in the Event Grid schema or the CloudEvents 1.0 schema, as a decoded
JSON object, and reads it through the Azure SDK's event models (`EventGridEvent`,
`CloudEvent`; plain data classes that do no I/O). Event types compare with azure-eventgrid's
`SystemEventNames`. Resource IDs compare case-insensitively. Unrelated events resolve to
nothing with a reason; malformed ones raise `MalformedEvent` so the caller logs and drops
them instead of retrying.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core.exceptions import DeserializationError
from azure.core.messaging import CloudEvent
from azure.core.serialization import NULL
from azure.eventgrid import EventGridEvent, SystemEventNames

from aksfw_core.azure.inventory import Inventory
from aksfw_core.errors import InputError
from aksfw_core.rules.resource_ids import ResourceId, managed_cluster_id, parse_resource_id

WRITE: str = SystemEventNames.ResourceWriteSuccessEventName.value
DELETE: str = SystemEventNames.ResourceDeleteSuccessEventName.value
ACTION: str = SystemEventNames.ResourceActionSuccessEventName.value
VALIDATION: str = SystemEventNames.EventGridSubscriptionValidationEventName.value
# All AKS system events (SystemEventNames.ContainerService*EventName), including ones newer
# than the installed SDK: each names its cluster as its source, which is all resolution needs.
AKS_EVENT_PREFIX = "Microsoft.ContainerService."
CLOUD_EVENTS_VERSION = "1.0"

WATCHER_CHANGE = "Aksfw.Kubernetes.ServicesChanged"
"""The CloudEvent `aksfw watch` publishes when a cluster's Services changed in a way that
can change tags. Its source is the managed cluster's resource ID; it carries no Service
data (`WATCHER_DATA`), so the app lists the cluster as for any event."""
WATCHER_SUBJECT = "services"
WATCHER_DATA: Mapping[str, Any] = {"schemaVersion": 1}
"""The whole `data` of a watcher event: a schema version, nothing about Services."""

# Actions that change what a cluster runs. Credential and list actions are left out on
# purpose: aksfw causes them itself when it reads a cluster.
CLUSTER_CHANGING_ACTIONS = frozenset({"start", "stop", "abort", "rotateclustercertificates"})

# What the SDK's deserializers raise on a document that is not an event of their schema
# (missing keys, a time that is not RFC 3339, values of the wrong JSON type).
_SDK_INPUT_ERRORS = (ValueError, LookupError, TypeError, AttributeError)

_Model = TypeVar("_Model")


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


def watcher_event(cluster_id: str, event_id: str, time: datetime) -> dict[str, Any]:
    """The CloudEvents 1.0 document `aksfw watch` publishes for a cluster (`WATCHER_CHANGE`).

    Raises:
        InputError: `cluster_id` is not a managed cluster's resource ID.
    """
    managed_cluster_id(cluster_id)
    return {
        "specversion": CLOUD_EVENTS_VERSION,
        "id": event_id,
        "source": cluster_id,
        "type": WATCHER_CHANGE,
        "subject": WATCHER_SUBJECT,
        "time": time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(WATCHER_DATA),
    }


def read_event(document: object) -> ResourceEvent:
    """Read one event in either schema (a batch of one is that event).

    A document with `specversion` is a CloudEvent (the field is required there and absent
    from the Event Grid schema); any other is an Event Grid event.

    Raises:
        MalformedEvent: not an event, naming what is wrong.
    """
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if not isinstance(document, Mapping):
        raise MalformedEvent("event: expected one JSON object")
    if "specversion" in document:
        return _read_cloud_event(document)
    return _read_event_grid_event(document)


def _read_event_grid_event(document: Mapping[str, Any]) -> ResourceEvent:
    # The SDK turns any JSON value into text and checks no required field: check the
    # fields resolution reads before it does.
    _require_text(document, "eventType")
    _require_text(document, "id")
    _check_optional_text(document, "subject")
    _check_optional_text(document, "topic")
    _check_optional_text(document, "eventTime")
    event = _parse(EventGridEvent.from_dict, document, "Event Grid")
    return _resource_event_of(
        event_id=event.id,
        event_type=event.event_type,
        subject=event.subject or "",
        topic=event.topic or "",
        data=event.data,
    )


def _read_cloud_event(document: Mapping[str, Any]) -> ResourceEvent:
    if document.get("specversion") != CLOUD_EVENTS_VERSION:
        raise MalformedEvent("event: only CloudEvents specversion 1.0 is supported")
    _require_text(document, "type")
    _require_text(document, "id")  # the SDK would invent one
    _check_optional_text(document, "subject")
    _check_optional_text(document, "source")  # presence is the SDK's check
    _check_optional_text(document, "time")
    event: CloudEvent[Any] = _parse(CloudEvent.from_dict, document, "CloudEvents 1.0")
    return _resource_event_of(
        event_id=event.id,
        event_type=event.type,
        subject=event.subject or "",
        topic=event.source or "",
        data=None if event.data is NULL else event.data,
    )


def _parse(
    from_dict: Callable[[dict[str, Any]], _Model], document: Mapping[str, Any], schema: str
) -> _Model:
    try:
        return from_dict(dict(document))
    except _SDK_INPUT_ERRORS as error:
        raise MalformedEvent(f"event: not a valid {schema} event: {_detail(error)}") from None


def _detail(error: BaseException) -> str:
    # azure-core's DeserializationError nests its reason in the text of the errors it
    # wraps; the first one it wrapped says it plainly.
    while isinstance(error, DeserializationError) and error.__context__ is not None:
        error = error.__context__
    return str(error)[:200] or type(error).__name__


def _resource_event_of(
    event_id: str, event_type: str, subject: str, topic: str, data: object
) -> ResourceEvent:
    if data is not None and not isinstance(data, Mapping) and event_type != VALIDATION:
        raise MalformedEvent("event: data must be an object")
    operation = data.get("operationName") if isinstance(data, Mapping) else None
    if operation is not None and not isinstance(operation, str):
        raise MalformedEvent("event: data.operationName must be a string")
    return ResourceEvent(event_id, event_type, subject, topic, operation)


def resolve(event: ResourceEvent, inventory: Inventory) -> Resolution:
    """Which monitored clusters the event affects, and how.

    Raises:
        MalformedEvent: a resource or system event whose resource ID cannot be read.
    """
    if event.type in (WRITE, DELETE, ACTION):
        return _resource_event(event, inventory)
    if event.type.startswith(AKS_EVENT_PREFIX):
        return _aks_event(event, inventory)
    if event.type == WATCHER_CHANGE:
        return _watcher_event(event, inventory)
    if event.type == VALIDATION:
        return Resolution(reason="ignored: subscription validation (answered by the host)")
    return Resolution(reason=f"ignored: event type {event.type} does not affect clusters")


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


def _watcher_event(event: ResourceEvent, inventory: Inventory) -> Resolution:
    resource = _resource(event.topic, "source")
    if not resource.is_managed_cluster:
        raise MalformedEvent(f"event: {event.type} source is not a managed cluster")
    known = inventory.find(resource.top_level_id())
    if known is None:
        # No early inventory refresh: anyone with the topic's Data Sender role can name any
        # cluster here, and a newly monitored cluster is learnt from its own Resource
        # Manager events (the tag write) or the next inventory read anyway.
        return Resolution(reason="ignored: watcher event for a cluster not in the inventory")
    change = ClusterChange(known.id, ChangeKind.RESYNC, "Services changed (watcher)")
    return Resolution(clusters=(change,))


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


def _require_text(document: Mapping[str, Any], key: str) -> None:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"event: {key} is missing or not a string")


def _check_optional_text(document: Mapping[str, Any], key: str) -> None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedEvent(f"event: {key} must be a string")
