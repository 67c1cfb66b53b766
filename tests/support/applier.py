"""The applier's cluster and its inventory for the pipeline tests: snapshots of cluster aks1
and a `Monitored` inventory a test can change under a running applier."""

from __future__ import annotations

from aksfw_core.azure.inventory import Inventory, MonitoredCluster
from aksfw_core.rules.messages import Snapshot

GROUP = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg"
CLUSTER = f"{GROUP}/providers/Microsoft.ContainerService/managedClusters/aks1"


def snapshot(version, tags, tag_name="aks1", target="panorama", cluster=CLUSTER, **flags):
    return Snapshot(
        cluster,
        tag_name,
        target,
        version,
        {ip: frozenset(t) for ip, t in tags.items()},
        **flags,
    )


def monitored(cluster_id, tag_name):
    name = cluster_id.rsplit("/", 1)[1]
    return MonitoredCluster(cluster_id, name, tag_name, f"MC_rg_{name}_westeurope")


class Monitored:
    """The inventory the applier sees; a test replaces it to add, alias or drop clusters."""

    def __init__(self, *clusters: MonitoredCluster) -> None:
        self.inventory = Inventory(clusters)

    def set(self, *clusters: MonitoredCluster) -> None:
        self.inventory = Inventory(clusters)

    def __call__(self, cluster_id: str) -> MonitoredCluster | None:
        return self.inventory.find(cluster_id)
