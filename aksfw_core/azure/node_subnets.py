"""Read an AKS cluster's node subnets from Resource Manager (DESIGN section 11).

Only the node pools' own subnets are read. Each pool names its subnet in
`agentPoolProfiles[].vnetSubnetID` (a bring-your-own VNet), and that subnet alone is read.
A pool without one sits in the AKS-managed VNet, for which AKS gives no subnet ID: AKS
names it `aks-vnet-<digits>` in the node resource group, with the one node subnet
`aks-subnet`, and that subnet alone is taken from the list of the group's virtual
networks. Any other VNet or subnet there (one added by hand, or by another tool) is not a
node pool's and is ignored; two candidates are ambiguous and neither is taken. The managed
cluster is read afresh each time, so a node pool added or moved a moment ago (its
`agentPools` write resolves to the cluster's resync) is seen at once.

Every prefix found is checked (`prefix_problem`): an IPv4 prefix shorter than /8
(`MIN_PREFIX_V4`), an IPv6 one shorter than /32 (`MIN_PREFIX_V6`), or one that touches an
unspecified, loopback, link-local, multicast or reserved range (`0.0.0.0/8`, `::/8`,
`224.0.0.0/4`, `fe80::/10` and the like) would make the node-subnet DAG match addresses
that are no node's: it is dropped with a warning (`node_subnets.prefix_refused`). A pool
left with no acceptable prefix is named in the answer (`SubnetRead.pools_without_prefix`),
so that the caller keeps what it registered last instead of unregistering it.

Subnets and VNets are read as raw GETs through the container-service client's ARM pipeline
(the app's credential, azure-core's retries of 429/5xx, its timeouts), so no network SDK is
needed. Every answer is capped in bytes, a list in pages, and a `nextLink` may only lead
back to the configured Resource Manager (`arm.follow_link`, the rule of every ARM paging).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from azure.core.credentials import TokenCredential
from azure.mgmt.containerservice import ContainerServiceClient

from aksfw_core.azure.arm import follow_link, get_json, managed_cluster
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.config import Settings
from aksfw_core.errors import InputError, NonRetryable
from aksfw_core.logs import log_event
from aksfw_core.rules.tags import network_text

NETWORK_API_VERSION = "2024-05-01"
"""Microsoft.Network API version of the subnet and virtual-network reads."""

SUBNET_READ_PERMISSION = "Microsoft.Network/virtualNetworks/subnets/read"
VNET_READ_PERMISSION = "Microsoft.Network/virtualNetworks/read"

RESOURCE_NAME = r"[A-Za-z0-9_.()-]{0,89}[A-Za-z0-9_()-]"
"""A resource group's or network resource's name in an ID aksfw builds a URL from: Azure's
characters, and no trailing period (Azure refuses one), so no name is `.` or `..`."""
_NAME = RESOURCE_NAME
_SUBNET_ID_RE = re.compile(
    r"/subscriptions/(?P<sub>[0-9a-fA-F-]{36})/resourceGroups/(?P<group>" + _NAME + r")"
    r"/providers/Microsoft\.Network/virtualNetworks/(?P<vnet>" + _NAME + r")"
    r"/subnets/(?P<subnet>" + _NAME + r")",
    re.IGNORECASE,
)

MANAGED_VNET_RE = re.compile(r"aks-vnet-[0-9]{1,20}", re.IGNORECASE)
"""The name AKS gives the managed VNet it makes in the node resource group."""
MANAGED_SUBNET = "aks-subnet"
"""The name of the node subnet in that VNet (the one subnet its node pools use)."""

MIN_PREFIX_V4 = 8
"""IPv4 node-subnet prefixes shorter than this are refused: a /8 (16 million addresses)
is already far larger than any subnet a node pool needs."""
MIN_PREFIX_V6 = 32
"""IPv6 node-subnet prefixes shorter than this are refused (Azure's IPv6 subnets are /64;
a /32 is a whole provider allocation)."""

_RESERVED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), name)
    for network, name in (
        ("0.0.0.0/8", "the unspecified 'this network' range"),
        ("127.0.0.0/8", "the loopback range"),
        ("169.254.0.0/16", "the link-local range"),
        ("224.0.0.0/4", "the multicast range"),
        ("240.0.0.0/4", "the reserved range (with the broadcast address)"),
        ("::/8", "the reserved range of the unspecified, loopback and IPv4-mapped addresses"),
        ("fe80::/10", "the link-local range"),
        ("fec0::/10", "the deprecated site-local range"),
        ("ff00::/8", "the multicast range"),
    )
)
"""Ranges a node subnet may not touch, with what each is. Beside them, any network whose
first or last address `ipaddress` calls unspecified, loopback, link-local, multicast or
reserved is refused too."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubnetRead:
    """What one read of a cluster's node subnets found."""

    prefixes: tuple[str, ...]
    """The acceptable CIDRs of the node pools' subnets, normalised and sorted."""
    pools_without_prefix: tuple[str, ...] = ()
    """Node pools left with no acceptable prefix (each one refused, or no managed VNet
    found for them), sorted: their subnet is unknown, so the caller keeps the last value."""


def prefix_problem(prefix: str) -> str | None:
    """Why `prefix` (a network in normal form, or an address) may not be registered as a
    node subnet, or as an outbound address or prefix (`egressTags`), or None. Pure.

    Raises:
        ValueError: it is not a network.
    """
    network = ipaddress.ip_network(prefix, strict=False)
    bound = MIN_PREFIX_V4 if network.version == 4 else MIN_PREFIX_V6
    if network.prefixlen < bound:
        return (
            f"it is shorter than /{bound}, the shortest IPv{network.version} prefix aksfw registers"
        )
    for reserved, name in _RESERVED:
        if reserved.version == network.version and network.overlaps(reserved):
            return f"it lies in {name} {reserved}"
    for address in (network.network_address, network.broadcast_address):
        for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved"):
            if getattr(address, f"is_{kind}"):
                return f"it holds {kind.replace('_', '-')} addresses"
    return None


class NodeSubnets:
    """Reads the subnet CIDRs of a monitored cluster's node pools."""

    def __init__(self, settings: Settings, credential: TokenCredential) -> None:
        self._settings = settings
        self._credential = credential
        self._endpoint = settings.arm_endpoint.rstrip("/")

    def read(self, cluster: MonitoredCluster) -> SubnetRead:
        """The acceptable CIDRs of the subnets the cluster's node pools use, and the pools
        left without one. Each refused prefix is logged as a warning.

        Raises:
            AuthError: Resource Manager refused to show the cluster, a subnet or the
                node resource group's VNets (a 403 names the permission that is missing).
            NotFound: the cluster, a subnet or the node resource group is gone.
            Retryable, NonRetryable: Resource Manager failed, or answered something that is
                not a cluster, subnet or VNet list.
        """
        limits = self._settings.limits
        with managed_cluster(self._credential, cluster.id, self._endpoint, limits) as (client, raw):
            by_subnet, managed_pools = pool_subnets(raw, cluster.id)
            prefixes: set[str] = set()
            empty: set[str] = set()
            for subnet_id, pools in by_subnet.items():
                good = _accepted(cluster, pools, subnet_id, self._subnet(client, subnet_id))
                prefixes.update(good)
                if not good:
                    empty.update(pools)
            if managed_pools:
                found = self._managed_subnet(client, cluster, managed_pools)
                good = _accepted(cluster, managed_pools, *found) if found else []
                prefixes.update(good)
                if not good:
                    empty.update(managed_pools)
        return SubnetRead(tuple(sorted(prefixes)), tuple(sorted(empty)))

    def _subnet(self, client: ContainerServiceClient, subnet_id: str) -> list[str]:
        url = subnet_url(self._endpoint, subnet_id)
        subnet = self._get(client, url, f"get subnet {subnet_id}", SUBNET_READ_PERMISSION)
        return _prefixes(subnet, subnet_id)

    def _managed_subnet(
        self, client: ContainerServiceClient, cluster: MonitoredCluster, pools: list[str]
    ) -> tuple[str, list[str]] | None:
        """The ID and prefixes of the managed VNet's node subnet (`aks-subnet` of the node
        resource group's `aks-vnet-<digits>`), or None (with a warning) when there is no
        such subnet, or more than one. No other VNet or subnet of the group is read."""
        group = cluster.node_resource_group
        what = f"list virtual networks of {cluster.node_resource_group_id}"
        url: str | None = (
            f"{self._endpoint}/subscriptions/{quote(cluster.subscription)}/resourceGroups/"
            f"{quote(group, safe='')}/providers/Microsoft.Network/virtualNetworks"
            f"?api-version={NETWORK_API_VERSION}"
        )
        found: list[tuple[str, list[str]]] = []
        pages = 0
        while url is not None:
            pages += 1
            if pages > self._settings.limits.arm_max_pages:
                raise NonRetryable(
                    f"{what}: more than {self._settings.limits.arm_max_pages} pages "
                    "(limits.armMaxPages)"
                )
            page = self._get(client, url, what, VNET_READ_PERMISSION)
            for vnet in _list(page.get("value"), what):
                if not (
                    isinstance(vnet, dict)
                    and isinstance(vnet.get("name"), str)
                    and MANAGED_VNET_RE.fullmatch(vnet["name"])
                ):
                    continue  # not the VNet AKS made: no node pool's
                for subnet in _list(_properties(vnet).get("subnets") or [], what):
                    if isinstance(subnet, dict) and str(subnet.get("name") or "").casefold() == (
                        MANAGED_SUBNET
                    ):
                        where = str(subnet.get("id") or f"{what}: {vnet['name']}/{MANAGED_SUBNET}")
                        found.append((where, _prefixes(subnet, where)))
            url = follow_link(page.get("nextLink"), self._endpoint, what)
        if len(found) == 1:
            return found[0]
        reason = (
            f"no VNet named aks-vnet-<digits> with a subnet {MANAGED_SUBNET}"
            if not found
            else f"{len(found)} such subnets ({', '.join(sorted(w for w, _ in found))[:600]}), "
            "so which one AKS uses is not known"
        )
        log_event(
            log,
            "node_subnets.managed_subnet_unknown",
            logging.WARNING,
            cluster=cluster.id,
            pools=pools,
            message=(
                f"cluster {cluster.id}: node pools {', '.join(pools)} use the AKS-managed VNet, "
                f"but the node resource group {group} holds {reason}; their subnet is not read"
            ),
        )
        return None

    def _get(
        self, client: ContainerServiceClient, url: str, what: str, permission: str
    ) -> dict[str, Any]:
        """One capped, classified GET (`arm.get_json`); a 403 names `permission`."""
        needs = (
            f"{permission} on the virtual network (a role such as Network Contributor, or a "
            "custom role with that permission)"
        )
        return get_json(client, url, what, self._settings.limits.arm_max_response_bytes, needs)


def subnet_url(endpoint: str, subnet_id: str) -> str:
    """The GET URL of a node pool's subnet at `endpoint`, built from its parsed ID. Pure.

    Raises:
        NonRetryable: `subnet_id` is not a subnet's resource ID.
    """
    found = _SUBNET_ID_RE.fullmatch(subnet_id)
    if found is None:
        raise NonRetryable(f"node pool subnet {subnet_id[:300]!r} is not a subnet ID")
    return (
        f"{endpoint}/subscriptions/{quote(found['sub'])}/resourceGroups/"
        f"{quote(found['group'], safe='')}/providers/Microsoft.Network/virtualNetworks/"
        f"{quote(found['vnet'], safe='')}/subnets/{quote(found['subnet'], safe='')}"
        f"?api-version={NETWORK_API_VERSION}"
    )


def pool_subnets(raw: dict[str, Any], cluster_id: str) -> tuple[dict[str, list[str]], list[str]]:
    """The distinct `vnetSubnetID`s of the cluster's node pools (first spelling kept), each
    with the pools that name it, and the pools that name none (they use the managed VNet).

    Raises:
        NonRetryable: the cluster lists no node pools.
    """
    # as_dict() gives REST names under `properties` (containerservice 41+); older models
    # flattened them in snake_case: accept both.
    pools: object = None
    for source in (raw.get("properties") or {}, raw):
        for key in ("agentPoolProfiles", "agent_pool_profiles"):
            if source.get(key) is not None:
                pools = source[key]
                break
        if pools is not None:
            break
    if not isinstance(pools, list) or not pools:
        raise NonRetryable(f"{cluster_id}: Resource Manager lists no node pools")
    spelling: dict[str, str] = {}
    by_subnet: dict[str, list[str]] = {}
    managed: list[str] = []
    for index, pool in enumerate(pools):
        subnet = None
        name = f"#{index}"
        if isinstance(pool, dict):
            subnet = pool.get("vnetSubnetID") or pool.get("vnet_subnet_id")
            if isinstance(pool.get("name"), str) and pool["name"]:
                name = pool["name"][:100]
        if isinstance(subnet, str) and subnet:
            first = spelling.setdefault(subnet.casefold(), subnet)
            by_subnet.setdefault(first, []).append(name)
        else:
            managed.append(name)
    return by_subnet, managed


def _accepted(
    cluster: MonitoredCluster, pools: list[str], subnet_id: str, prefixes: list[str]
) -> list[str]:
    """`prefixes` without the refused ones, each refusal logged as a warning."""
    good = []
    for prefix in prefixes:
        problem = prefix_problem(prefix)
        if problem is None:
            good.append(prefix)
            continue
        log_event(
            log,
            "node_subnets.prefix_refused",
            logging.WARNING,
            cluster=cluster.id,
            pools=pools,
            subnet=subnet_id,
            prefix=prefix,
            reason=problem,
            message=(
                f"cluster {cluster.id}: node pool {', '.join(pools)} subnet prefix {prefix} "
                f"({subnet_id[:300]}) is not registered: {problem}"
            ),
        )
    return good


def _prefixes(subnet: object, where: str) -> list[str]:
    """`addressPrefix` and `addressPrefixes` of a subnet, normalised.

    Raises:
        NonRetryable: the subnet holds no prefix, or one that is not a network.
    """
    properties = _properties(subnet)
    found: list[object] = []
    if properties.get("addressPrefix"):
        found.append(properties["addressPrefix"])
    found.extend(_list(properties.get("addressPrefixes") or [], where))
    if not found:
        raise NonRetryable(f"{where}: the subnet has no addressPrefix")
    try:
        return [network_text(prefix) for prefix in _strings(found, where)]
    except InputError as error:
        raise NonRetryable(f"{where}: {error}") from None


def _properties(item: object) -> dict[str, Any]:
    properties = item.get("properties") if isinstance(item, dict) else None
    return properties if isinstance(properties, dict) else {}


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise NonRetryable(f"{where}: Resource Manager answered a non-list where a list belongs")
    return value


def _strings(values: list[object], where: str) -> Iterator[str]:
    for value in values:
        if not isinstance(value, str):
            raise NonRetryable(f"{where}: an address prefix is not a string")
        yield value
