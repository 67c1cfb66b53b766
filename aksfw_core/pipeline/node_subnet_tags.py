"""The node-subnet entries a cluster's snapshots carry (DESIGN section 11): its node pools'
subnet CIDRs under `aks.<cluster>.node_subnet`, read from Resource Manager at each resync.

When that read fails, the resync still goes ahead with the Service tags it did read, and
carries the node-subnet entries last applied for the cluster (`kept_entries`), so nothing is
unregistered because a read failed (DESIGN section 6). The other way, failing the whole
resync as transient, would hold back every Service change for as long as the subnets cannot
be read, and a missing role (a 403) would hold them back for good.

A read that refused a node pool's every prefix (shorter than the bound, or in a reserved
range: `azure.node_subnets.prefix_problem`), or found no managed VNet for it, leaves that
pool's subnet unknown: the entries last applied are kept beside the acceptable ones just
read (`node_subnets.pool_kept` in the log), as for a failed read, since which of the old
entries was that pool's is not recorded. Entries carried from an applied state are
checked the same way, so a hostile prefix an older release registered is not carried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.azure.node_subnets import SubnetRead, prefix_problem
from aksfw_core.pipeline.kept_entries import EntryKind, LastApplied, read_or_kept
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.rules.model import IpTags
from aksfw_core.rules.tags import node_subnet_prefixes, node_subnet_tags

log = logging.getLogger(__name__)

SubnetReader = Callable[[MonitoredCluster], SubnetRead]
"""A cluster's node subnet CIDRs (`azure.node_subnets.NodeSubnets.read`)."""


class NodeSubnetTags:
    """What a resync wants registered for a cluster's node subnets."""

    def __init__(self, read: SubnetReader, store: StateStore) -> None:
        self._read = read
        self._store = store

    def wanted(self, cluster: MonitoredCluster) -> IpTags:
        """The node-subnet entries of `cluster` (none unless it opted in): read now, or
        the ones last applied when the read fails; both when it left a node pool without
        an acceptable prefix.

        Raises:
            AuthError, Retryable, NonRetryable: the read failed, or left a pool without a
                prefix, and the applied state could not be read either (nothing is queued,
                so nothing is removed).
        """
        if not cluster.node_subnets:
            return {}

        def read() -> tuple[IpTags, tuple[str, ...]]:
            found = self._read(cluster)
            return node_subnet_tags(cluster.tag_name, found.prefixes), found.pools_without_prefix

        return read_or_kept(NODE_SUBNETS, cluster, LastApplied(self._store, cluster), read)


def carried(tag_name: str, applied_tag_name: str, applied: IpTags) -> dict[str, frozenset[str]]:
    """The node-subnet entries of an applied state (saved under `applied_tag_name`), under
    the cluster's current tag name, without any `prefix_problem` refuses. Pure."""
    prefixes = node_subnet_prefixes(applied_tag_name, applied)
    return node_subnet_tags(tag_name, [p for p in prefixes if prefix_problem(p) is None])


def _pools_text(cluster: MonitoredCluster, pools: tuple[str, ...], kept: IpTags) -> str:
    return (
        f"cluster {cluster.id}: node pools {', '.join(pools)} have no acceptable subnet "
        f"prefix; the node subnets registered last are kept: {', '.join(sorted(kept)) or 'none'}"
    )


NODE_SUBNETS = EntryKind(log, "node_subnets", carried, "pool_kept", "pools", _pools_text)
"""Node-subnet entries: a read that failed, or left a pool without a prefix, keeps them."""
