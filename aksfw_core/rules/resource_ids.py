"""Azure Resource Manager resource IDs: parse, compare case-insensitively. Pure code."""

from __future__ import annotations

import re
from typing import NamedTuple

from aksfw_core.errors import InputError

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_RESOURCE_RE = re.compile(
    rf"/subscriptions/(?P<subscription>{_UUID})"
    r"(?:/resourceGroups/(?P<group>[-\w._()]{1,90}))?"
    r"(?:/providers/(?P<namespace>[A-Za-z0-9.]+)/(?P<types>.+))?",
    re.IGNORECASE,
)
_SUBSCRIPTION_RE = re.compile(_UUID)
MANAGED_CLUSTER_TYPE = "microsoft.containerservice/managedclusters"


class ResourceId(NamedTuple):
    """The parts of an ARM resource ID that aksfw needs."""

    subscription: str
    resource_group: str | None
    provider: str | None
    """Resource provider namespace, e.g. `Microsoft.Network`."""
    path: tuple[str, ...]
    """Type/name pairs after the provider: `("loadBalancers", "kubernetes", ...)`."""

    @property
    def group_id(self) -> str | None:
        """`/subscriptions/<sub>/resourceGroups/<rg>`, lower-cased, or None."""
        if self.resource_group is None:
            return None
        return f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group}".lower()

    @property
    def type(self) -> str:
        """`provider/type[/childType...]`, lower-cased, e.g. `microsoft.network/loadbalancers`."""
        types = self.path[0::2]
        return "/".join([self.provider or "", *types]).lower()

    def top_level_id(self) -> str:
        """The ID of the top-level resource (children such as agent pools stripped), lower-cased."""
        base = self.group_id or f"/subscriptions/{self.subscription}".lower()
        if not self.provider or len(self.path) < 2:
            return base
        return f"{base}/providers/{self.provider}/{self.path[0]}/{self.path[1]}".lower()

    @property
    def is_managed_cluster(self) -> bool:
        """True for a managed cluster itself (not one of its children)."""
        return len(self.path) == 2 and self.type == MANAGED_CLUSTER_TYPE

    @property
    def in_managed_cluster(self) -> bool:
        """True for a managed cluster or any of its child resources."""
        return len(self.path) >= 2 and self.type.startswith(MANAGED_CLUSTER_TYPE)


def parse_resource_id(text: str) -> ResourceId:
    """Parse an ARM resource ID (or a subscription or resource-group ID).

    Raises:
        InputError: `text` is not a resource ID.
    """
    found = _RESOURCE_RE.fullmatch(text.strip().rstrip("/")) if isinstance(text, str) else None
    if not found:
        raise InputError(f"{text!r} is not an Azure resource ID")
    path = tuple(found["types"].split("/")) if found["types"] else ()
    if path and (len(path) % 2 or not all(path)):
        raise InputError(f"{text!r} is not an Azure resource ID (odd type/name path)")
    return ResourceId(
        subscription=found["subscription"].lower(),
        resource_group=found["group"],
        provider=found["namespace"],
        path=path,
    )


def managed_cluster_id(text: str) -> ResourceId:
    """Parse the resource ID of a managed cluster.

    Raises:
        InputError: `text` is not the ID of a `Microsoft.ContainerService/managedClusters`.
    """
    resource = parse_resource_id(text)
    if not resource.is_managed_cluster or resource.resource_group is None:
        raise InputError(
            f"{text!r} is not a Microsoft.ContainerService/managedClusters resource ID"
        )
    return resource


def is_subscription_id(text: str) -> bool:
    """True for a subscription GUID."""
    return isinstance(text, str) and _SUBSCRIPTION_RE.fullmatch(text) is not None
