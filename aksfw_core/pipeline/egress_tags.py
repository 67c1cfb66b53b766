"""The egress entries a cluster's snapshots carry (DESIGN section 11), with `egressTags`:
its outbound addresses and prefixes under `aks.<cluster>.egress`, read from Resource
Manager (`azure.egress`), and each Static Egress Gateway's prefix under
`aks.<cluster>.egress.<namespace>.<gateway>`, listed from the cluster's own API
(`kube_egress`), both at every resync. They join the Service tags under the one tag rule
(`rules.tags.compute_tags`, its `entries`).

Each read fails on its own, as the node subnets' read does (`kept_entries`): a failed
outbound read keeps the outbound entries last applied for the cluster, a failed gateway
list the gateway entries, and the resync goes on with everything else, so nothing is
unregistered because a read failed. A read that left an outbound resource unknown (its
value refused, or a public IP with no address yet) keeps the outbound entries last applied
beside the ones just read, since which of them was that resource's is not recorded; a
gateway whose prefix is refused keeps the entries last applied under its own tag. Entries
carried from an applied state are checked again (`node_subnets.prefix_problem`), so a
hostile value an older release registered is not carried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aksfw_core.azure.egress import OutboundRead
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.azure.node_subnets import prefix_problem
from aksfw_core.errors import AksfwError, InputError
from aksfw_core.logs import log_event
from aksfw_core.pipeline.kept_entries import (
    EntryKind,
    LastApplied,
    log_read_failed,
    read_or_kept,
)
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.rules.egress import (
    Gateway,
    applied_egress,
    egress_key,
    gateway_entries,
    gateway_tag,
    merged,
    outbound_entries,
    read_gateway,
)
from aksfw_core.rules.model import IpTags

log = logging.getLogger(__name__)

OutboundReader = Callable[[MonitoredCluster], OutboundRead]
"""A cluster's outbound addresses (`azure.egress.OutboundAddresses.read`)."""
GatewayLister = Callable[[], list[dict[str, Any]]]
"""The cluster's gateways, each `rules.egress.gateway_fields` (`kube_egress.StaticGateways`)."""


class EgressTags:
    """What a resync wants registered for a cluster's egress addresses."""

    def __init__(self, read: OutboundReader, store: StateStore) -> None:
        self._read = read
        self._store = store

    def wanted(self, cluster: MonitoredCluster, gateways: GatewayLister) -> IpTags:
        """The egress entries of `cluster` (none unless it opted in): read now, or for a
        read that failed, the ones of its kind last applied.

        Raises:
            AuthError, Retryable, NonRetryable: a read failed, or left something unknown,
                and the applied state could not be read either (nothing is queued, so
                nothing is removed).
        """
        if not cluster.egress_tags:
            return {}
        last = LastApplied(self._store, cluster)
        return merged(self._outbound(cluster, last), self._gateways(cluster, gateways, last))

    def _outbound(self, cluster: MonitoredCluster, last: LastApplied) -> IpTags:
        def read() -> tuple[IpTags, tuple[str, ...]]:
            found = self._read(cluster)
            return outbound_entries(cluster.tag_name, found.keys), found.unknown

        return read_or_kept(OUTBOUND, cluster, last, read)

    def _gateways(
        self, cluster: MonitoredCluster, gateways: GatewayLister, last: LastApplied
    ) -> IpTags:
        try:
            found = [read_gateway(fields) for fields in gateways()]
        except AksfwError as error:
            kept = last.entries(kept_gateways)
            log_read_failed(log, "egress.gateways_failed", cluster, error, kept)
            return kept
        keys: dict[Gateway, list[str]] = {}
        refused: set[str] = set()
        for gateway in found:
            keys[gateway] = []
            for value in gateway.prefixes:
                key, problem = _checked(value)
                if problem is None:
                    keys[gateway].append(key)
                    continue
                refused.add(gateway_tag(cluster.tag_name, gateway))
                _log_refused(cluster, gateway, value, problem)
        wanted = gateway_entries(cluster.tag_name, keys)
        if not refused:
            return wanted
        kept = {key: tags & refused for key, tags in last.entries(kept_gateways).items()}
        return merged({key: tags for key, tags in kept.items() if tags}, wanted)


def kept_outbound(
    tag_name: str, applied_tag_name: str, applied: IpTags
) -> dict[str, frozenset[str]]:
    """The outbound entries of an applied state, under the current tag name, without any
    `prefix_problem` refuses (a `kept_entries.Pick`). Pure."""
    entries = applied_egress(tag_name, applied_tag_name, applied, gateways=False)
    return {key: tags for key, tags in entries.items() if _checked(key)[1] is None}


def kept_gateways(
    tag_name: str, applied_tag_name: str, applied: IpTags
) -> dict[str, frozenset[str]]:
    """The gateway entries of an applied state, as `kept_outbound`. Pure."""
    entries = applied_egress(tag_name, applied_tag_name, applied, gateways=True)
    return {key: tags for key, tags in entries.items() if _checked(key)[1] is None}


def _checked(value: str) -> tuple[str, str | None]:
    """`value` as a key, and why it may not be registered (None: it may)."""
    try:
        key = egress_key(value)
    except InputError as error:
        return value, str(error)
    return key, prefix_problem(key)


def _log_refused(cluster: MonitoredCluster, gateway: Gateway, value: str, problem: str) -> None:
    where = f"{gateway.namespace}/{gateway.name}"
    log_event(
        log,
        "egress.gateway_prefix_refused",
        logging.WARNING,
        cluster=cluster.id,
        gateway=where,
        prefix=value[:100],
        reason=problem,
        message=(
            f"cluster {cluster.id}: StaticGatewayConfiguration {where} egress prefix "
            f"{value[:100]!r} is not registered: {problem}"
        ),
    )


def _unknown_text(cluster: MonitoredCluster, resources: tuple[str, ...], kept: IpTags) -> str:
    return (
        f"cluster {cluster.id}: the address of {', '.join(resources)[:600]} is not known; the "
        f"outbound addresses registered last are kept: {', '.join(sorted(kept)) or 'none'}"
    )


OUTBOUND = EntryKind(log, "egress", kept_outbound, "outbound_kept", "resources", _unknown_text)
"""Outbound entries: a read that failed, or left a resource unknown, keeps them."""
