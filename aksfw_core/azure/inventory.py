"""The inventory: the clusters aksfw monitors, as resolved from the configuration and
Azure, and the report of one read (the inventory and the clusters it skipped, with why).
Printed by `aksfw clusters`, read back by `resolve-event --inventory`. Pure code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aksfw_core.config import TokenAccess
from aksfw_core.errors import InputError
from aksfw_core.rules.monitoring import Skipped
from aksfw_core.rules.resource_ids import managed_cluster_id, parse_resource_id
from aksfw_core.rules.selectors import NamedSelector, named_selector
from aksfw_core.rules.tags import check_cluster_name


@dataclass(frozen=True)
class MonitoredCluster:
    """One AKS cluster whose Services aksfw keeps registered."""

    id: str
    """Resource ID as ARM spells it."""
    name: str
    """AKS cluster name."""
    tag_name: str
    """`<cluster>` in its tags: the alias, or the name."""
    node_resource_group: str
    """Name of the resource group holding its load balancers and public IPs."""
    selectors: tuple[NamedSelector, ...] = ()
    credential: str = "azure"
    token: TokenAccess | None = field(default=None, compare=False, repr=False)
    """For a `token` credential, where the token is (carried from the configuration, so
    reaching the cluster needs no second look-up; None in an inventory read from JSON)."""
    """`azure` (managed identity) or `token` (Key Vault secret)."""
    node_subnets: bool = False
    """Register its node pools' subnet CIDRs under `aks.<tag name>.node_subnet`."""
    egress_tags: bool = False
    """Register its outbound addresses and gateway prefixes under `aks.<tag name>.egress…`."""

    @property
    def subscription(self) -> str:
        """Subscription ID, lower-cased."""
        return managed_cluster_id(self.id).subscription

    @property
    def node_resource_group_id(self) -> str:
        """`/subscriptions/<sub>/resourcegroups/<node rg>`, lower-cased."""
        group = self.node_resource_group
        return f"/subscriptions/{self.subscription}/resourcegroups/{group}".lower()

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "tagName": self.tag_name,
            "nodeResourceGroup": self.node_resource_group,
            "selectors": [
                {"name": s.name, "match": s.selector.text, "namespace": s.namespace}
                for s in self.selectors
            ],
            "credential": self.credential,
        }
        if self.node_subnets:  # only when on: the documented inventory stays as it was
            document["nodeSubnets"] = True
        if self.egress_tags:
            document["egressTags"] = True
        return document


@dataclass(frozen=True)
class Inventory:
    """The monitored clusters, looked up by ID or by node resource group."""

    clusters: tuple[MonitoredCluster, ...] = ()

    def __post_init__(self) -> None:
        by_tag: dict[str, str] = {}
        for cluster in self.clusters:
            other = by_tag.setdefault(cluster.tag_name, cluster.id)
            if other != cluster.id:
                raise InputError(
                    f"clusters {other} and {cluster.id} would both tag as "
                    f"{cluster.tag_name!r}; give one an alias"
                )

    def find(self, cluster_id: str) -> MonitoredCluster | None:
        """The cluster with this resource ID (any case), if monitored."""
        wanted = cluster_id.casefold().rstrip("/")
        return next((c for c in self.clusters if c.id.casefold() == wanted), None)

    def owning_node_group(self, group_id: str) -> MonitoredCluster | None:
        """The cluster whose node resource group has this ID (any case)."""
        wanted = group_id.lower()
        return next((c for c in self.clusters if c.node_resource_group_id == wanted), None)

    def as_json(self) -> dict[str, Any]:
        """`{"clusters": [...]}`: what `resolve-event --inventory` reads back."""
        return {"clusters": [cluster.as_json() for cluster in self.clusters]}


@dataclass(frozen=True)
class DiscoveryReport:
    """What one read of Resource Manager found: the inventory, and every cluster (or
    subscription) it looked at and left out, with why (`aksfw clusters`)."""

    inventory: Inventory
    skipped: tuple[Skipped, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The inventory's document with `"skipped": [{"id", "reason", "detail"}]`, which
        `inventory_from_json` ignores: `aksfw clusters` prints it."""
        return {**self.inventory.as_json(), "skipped": [s.as_json() for s in self.skipped]}


def inventory_from_json(document: object) -> Inventory:
    """Read an inventory document back (`resolve-event --inventory`).

    Raises:
        InputError: the document is not an inventory, naming the field at fault.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("clusters"), list):
        raise InputError('inventory: expected {"clusters": [...]}')
    return Inventory(tuple(_cluster(item, i) for i, item in enumerate(document["clusters"])))


def _cluster(item: object, index: int) -> MonitoredCluster:
    where = f"inventory.clusters[{index}]"
    if not isinstance(item, Mapping):
        raise InputError(f"{where}: expected an object")
    try:
        resource = managed_cluster_id(str(item.get("id", "")))
        name = str(item.get("name") or resource.path[1])
        tag_name = check_cluster_name(str(item.get("tagName") or name))
        node_group = item.get("nodeResourceGroup")
        if not isinstance(node_group, str) or not node_group:
            raise InputError("nodeResourceGroup is missing")
        parse_resource_id(f"/subscriptions/{resource.subscription}/resourceGroups/{node_group}")
        selectors = tuple(_selectors(item.get("selectors") or []))
        credential = item.get("credential", "azure")
        if credential not in ("azure", "token"):
            raise InputError("credential must be 'azure' or 'token'")
        node_subnets = item.get("nodeSubnets", False)
        if not isinstance(node_subnets, bool):
            raise InputError("nodeSubnets must be true or false")
        egress_tags = item.get("egressTags", False)
        if not isinstance(egress_tags, bool):
            raise InputError("egressTags must be true or false")
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    return MonitoredCluster(
        str(item["id"]),
        name,
        tag_name,
        node_group,
        selectors,
        credential,
        node_subnets=node_subnets,
        egress_tags=egress_tags,
    )


def _selectors(items: Iterable[object]) -> Iterable[NamedSelector]:
    for item in items:
        if not isinstance(item, Mapping):
            raise InputError("selectors: expected objects")
        name, match = str(item.get("name", "")), str(item.get("match") or "")
        namespace = item.get("namespace")
        yield named_selector(name, match, str(namespace) if namespace is not None else None)
