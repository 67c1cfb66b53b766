"""Read an AKS cluster's node subnets from Resource Manager (DESIGN section 11).

Each node pool names its subnet in `agentPoolProfiles[].vnetSubnetID` (a bring-your-own
VNet); a pool without one sits in the AKS-managed VNet of the node resource group, whose
subnets are read from the list of that group's virtual networks. The managed cluster is
read afresh each time, so a node pool added or moved a moment ago (its `agentPools` write
resolves to the cluster's resync) is seen at once.

Subnets and VNets are read as raw GETs through the container-service client's ARM pipeline
(the app's credential, azure-core's retries of 429/5xx, its timeouts), so no network SDK is
needed. Every answer is capped in bytes, a list in pages, and a `nextLink` may only lead
back to the configured Resource Manager (`arm.follow_link`, the rule of every ARM paging).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from azure.core.credentials import TokenCredential
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient

from aksfw_core.azure.arm import NotFound, call, container_service, follow_link
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.config import Settings
from aksfw_core.errors import AuthError, InputError, NonRetryable, http_error, retry_after_seconds
from aksfw_core.rules.resource_ids import managed_cluster_id
from aksfw_core.rules.tags import network_text
from aksfw_core.transport import azure_errors, read_capped

NETWORK_API_VERSION = "2024-05-01"
"""Microsoft.Network API version of the subnet and virtual-network reads."""

SUBNET_READ_PERMISSION = "Microsoft.Network/virtualNetworks/subnets/read"
VNET_READ_PERMISSION = "Microsoft.Network/virtualNetworks/read"

_NAME = r"[A-Za-z0-9_.()-]{1,90}"
_SUBNET_ID_RE = re.compile(
    r"/subscriptions/(?P<sub>[0-9a-fA-F-]{36})/resourceGroups/(?P<group>" + _NAME + r")"
    r"/providers/Microsoft\.Network/virtualNetworks/(?P<vnet>" + _NAME + r")"
    r"/subnets/(?P<subnet>" + _NAME + r")",
    re.IGNORECASE,
)


class NodeSubnets:
    """Reads the subnet CIDRs of a monitored cluster's node pools."""

    def __init__(self, settings: Settings, credential: TokenCredential) -> None:
        self._settings = settings
        self._credential = credential
        self._endpoint = settings.arm_endpoint.rstrip("/")

    def read(self, cluster: MonitoredCluster) -> tuple[str, ...]:
        """The normalised CIDRs of the subnets the cluster's node pools use, sorted.

        Raises:
            AuthError: Resource Manager refused to show the cluster, a subnet or the
                node resource group's VNets (a 403 names the permission that is missing).
            NotFound: the cluster, a subnet or the node resource group is gone.
            Retryable, NonRetryable: Resource Manager failed, or answered something that is
                not a cluster, subnet or VNet list.
        """
        resource = managed_cluster_id(cluster.id)
        with container_service(
            self._credential, resource.subscription, self._endpoint, self._settings.limits
        ) as client:
            group, name = resource.resource_group or "", resource.path[1]
            raw = call(
                f"get {cluster.id}", lambda: client.managed_clusters.get(group, name).as_dict()
            )
            subnet_ids, managed = _pool_subnets(raw, cluster.id)
            prefixes: set[str] = set()
            for subnet_id in subnet_ids:
                prefixes.update(self._subnet(client, subnet_id))
            if managed:
                prefixes.update(self._managed_vnet(client, cluster))
        return tuple(sorted(prefixes))

    def _subnet(self, client: ContainerServiceClient, subnet_id: str) -> list[str]:
        found = _SUBNET_ID_RE.fullmatch(subnet_id)
        if found is None:
            raise NonRetryable(f"node pool subnet {subnet_id[:300]!r} is not a subnet ID")
        url = (
            f"{self._endpoint}/subscriptions/{quote(found['sub'])}/resourceGroups/"
            f"{quote(found['group'], safe='')}/providers/Microsoft.Network/virtualNetworks/"
            f"{quote(found['vnet'], safe='')}/subnets/{quote(found['subnet'], safe='')}"
            f"?api-version={NETWORK_API_VERSION}"
        )
        subnet = self._get(client, url, f"get subnet {subnet_id}", SUBNET_READ_PERMISSION)
        return _prefixes(subnet, subnet_id)

    def _managed_vnet(self, client: ContainerServiceClient, cluster: MonitoredCluster) -> list[str]:
        """The subnets of every VNet in the node resource group (AKS puts its managed VNet,
        and only that, there)."""
        group = cluster.node_resource_group
        what = f"list virtual networks of {cluster.node_resource_group_id}"
        url: str | None = (
            f"{self._endpoint}/subscriptions/{quote(cluster.subscription)}/resourceGroups/"
            f"{quote(group, safe='')}/providers/Microsoft.Network/virtualNetworks"
            f"?api-version={NETWORK_API_VERSION}"
        )
        prefixes: list[str] = []
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
                for subnet in _list(_properties(vnet).get("subnets") or [], what):
                    prefixes.extend(_prefixes(subnet, str(subnet.get("id") or what)))
            url = follow_link(page.get("nextLink"), self._endpoint, what)
        return prefixes

    def _get(
        self, client: ContainerServiceClient, url: str, what: str, permission: str
    ) -> dict[str, Any]:
        """One GET through the client's pipeline, its answer capped and classified.

        Raises:
            AuthError: refused; a 403 names `permission`.
            NotFound, Retryable, NonRetryable: as `transport.http_error` classifies.
        """
        limit = self._settings.limits.arm_max_response_bytes
        try:
            with azure_errors(what, "Resource Manager"):
                response = client.send_request(HttpRequest("GET", url), stream=True)
                try:
                    status = response.status_code
                    if status >= 400:
                        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                        if status == 404:
                            raise NotFound(f"{what}: not found", status=404)
                        raise http_error(status, f"{what}: Resource Manager", retry_after)
                    body = read_capped(response.iter_bytes(), limit, what)
                finally:
                    response.close()
        except AuthError as error:
            if error.status != 403:
                raise
            raise AuthError(
                f"{what}: Resource Manager refused it (HTTP 403): the app's identity needs "
                f"{permission} on the virtual network (a role such as Network Contributor, "
                "or a custom role with that permission)",
                status=403,
            ) from None
        try:
            document = json.loads(body)
        except ValueError:
            raise NonRetryable(f"{what}: Resource Manager answered no JSON") from None
        if not isinstance(document, dict):
            raise NonRetryable(f"{what}: Resource Manager answered no JSON object")
        return document


def _pool_subnets(raw: dict[str, Any], cluster_id: str) -> tuple[list[str], bool]:
    """The distinct `vnetSubnetID`s of the cluster's node pools (first spelling kept), and
    whether some pool has none (it uses the managed VNet).

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
    seen: dict[str, str] = {}
    managed = False
    for pool in pools:
        subnet = None
        if isinstance(pool, dict):
            subnet = pool.get("vnetSubnetID") or pool.get("vnet_subnet_id")
        if isinstance(subnet, str) and subnet:
            seen.setdefault(subnet.casefold(), subnet)
        else:
            managed = True
    return list(seen.values()), managed


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
