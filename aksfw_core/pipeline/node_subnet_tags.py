"""The node-subnet entries a cluster's snapshots carry (DESIGN section 11): its node pools'
subnet CIDRs under `aks.<cluster>.node_subnet`, read from Resource Manager at each resync.

When that read fails, the resync still goes ahead with the Service tags it did read, and
carries the node-subnet entries last applied for the cluster, so nothing is unregistered
because a read failed (DESIGN section 6). The other way, failing the whole resync as
transient, would hold back every Service change for as long as the subnets cannot be read,
and a missing role (a 403) would hold them back for good. The entries are taken from the
newest applied state of the cluster (one state read, only after a failed read): all targets
get the same ones, so the snapshot's fingerprint stays one per cluster, and they are the
last subnets a successful read found.

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
from aksfw_core.errors import AksfwError
from aksfw_core.logs import log_event
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

    def wanted(self, cluster: MonitoredCluster) -> dict[str, frozenset[str]]:
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
        try:
            read = self._read(cluster)
        except AksfwError as error:
            kept = self._last_applied(cluster)
            log_event(
                log,
                "node_subnets.read_failed",
                logging.WARNING,
                cluster=cluster.id,
                error=f"{type(error).__name__}: {error}",
                status=error.status,
                kept=sorted(kept),
            )
            return kept
        wanted = node_subnet_tags(cluster.tag_name, read.prefixes)
        if not read.pools_without_prefix:
            return wanted
        kept = self._last_applied(cluster)
        log_event(
            log,
            "node_subnets.pool_kept",
            logging.WARNING,
            cluster=cluster.id,
            pools=list(read.pools_without_prefix),
            kept=sorted(kept),
            message=(
                f"cluster {cluster.id}: node pools {', '.join(read.pools_without_prefix)} have "
                "no acceptable subnet prefix; the node subnets registered last are kept: "
                f"{', '.join(sorted(kept)) or 'none'}"
            ),
        )
        return {**kept, **wanted}

    def _last_applied(self, cluster: MonitoredCluster) -> dict[str, frozenset[str]]:
        listed = self._store.summaries(cluster.id)
        if not listed:
            return {}
        newest = max(listed, key=lambda item: item.summary.version).summary
        state, _ = self._store.load_applied(cluster.id, newest.target)
        if state is None:
            return {}
        return carried(cluster.tag_name, state.tag_name, state.tags)


def carried(tag_name: str, applied_tag_name: str, applied: IpTags) -> dict[str, frozenset[str]]:
    """The node-subnet entries of an applied state (saved under `applied_tag_name`), under
    the cluster's current tag name, without any `prefix_problem` refuses. Pure."""
    prefixes = node_subnet_prefixes(applied_tag_name, applied)
    return node_subnet_tags(tag_name, [p for p in prefixes if prefix_problem(p) is None])
