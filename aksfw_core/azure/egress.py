"""Read an AKS cluster's outbound addresses from Resource Manager (DESIGN section 11), for
`aks.<cluster>.egress`: the public IPs and prefixes its traffic to the internet leaves
from, by its `networkProfile.outboundType`:

- `loadBalancer` (the default): the load balancer's `effectiveOutboundIPs` (managed or
  own public IPs) and `outboundIPPrefixes.publicIPPrefixes`;
- `managedNATGateway`: the AKS-managed NAT gateway's `natGatewayProfile.effectiveOutboundIPs`
  and `outboundIPPrefixes.publicIPPrefixes`;
- `userAssignedNATGateway`: the NAT gateway of each node pool's subnet (`vnetSubnetID` →
  the subnet's `natGateway.id`), its `publicIpAddresses` and `publicIpPrefixes` (and the
  `…V6` lists where the API version returns them);
- `userDefinedRouting`, `none`: nothing aksfw can know (a firewall's address, or Azure's
  default outbound access): no address, and a debug line.

Each reference is read as it names itself (a `publicIPAddresses` ID for its `ipAddress`,
a `publicIPPrefixes` one for its `ipPrefix`), so an ID listed under either field is read
right. The managed cluster is read afresh each time. Every value is checked as node subnet
prefixes are (`node_subnets.prefix_problem`: the same bounds and reserved ranges); a
refused one, or a public IP with no address yet, leaves its resource unknown
(`OutboundRead.unknown`), and the caller keeps what it registered last.

Reads are raw GETs through the container-service client's pipeline (`arm.get_json`: the
app's credential, azure-core's retries, capped answers, the same-origin rule), at most
`MAX_OUTBOUND_RESOURCES` resources per cluster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from azure.core.credentials import TokenCredential
from azure.mgmt.containerservice import ContainerServiceClient

from aksfw_core.azure.arm import get_json, managed_cluster
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.azure.node_subnets import (
    NETWORK_API_VERSION,
    RESOURCE_NAME,
    SUBNET_READ_PERMISSION,
    pool_subnets,
    prefix_problem,
    subnet_url,
)
from aksfw_core.config import Settings
from aksfw_core.errors import InputError, NonRetryable
from aksfw_core.logs import log_event
from aksfw_core.rules.egress import egress_key

PUBLIC_IP_READ = "Microsoft.Network/publicIPAddresses/read"
PREFIX_READ = "Microsoft.Network/publicIPPrefixes/read"
NAT_GATEWAY_READ = "Microsoft.Network/natGateways/read"
MAX_OUTBOUND_RESOURCES = 256
"""Resources one read may GET (subnets, NAT gateways, public IPs and prefixes): AKS allows
at most 100 managed outbound IPs on a load balancer, and a NAT gateway 16 addresses."""

_NAME = RESOURCE_NAME
_NETWORK_ID_RE = re.compile(
    r"/subscriptions/(?P<sub>[0-9a-fA-F-]{36})/resourceGroups/(?P<group>" + _NAME + r")"
    r"/providers/Microsoft\.Network/(?P<type>publicIPAddresses|publicIPPrefixes|natGateways)"
    r"/(?P<name>" + _NAME + r")",
    re.IGNORECASE,
)
_TYPES = {
    "publicipaddresses": ("publicIPAddresses", PUBLIC_IP_READ),
    "publicipprefixes": ("publicIPPrefixes", PREFIX_READ),
    "natgateways": ("natGateways", NAT_GATEWAY_READ),
}
"""By lower-cased type: its REST spelling and the permission a read of it needs."""
_VALUES = {"publicipaddresses": "ipAddress", "publicipprefixes": "ipPrefix"}
"""Where a public IP's address and a prefix's range are, under `properties`."""
_PROFILES = {
    "loadbalancer": ("loadBalancerProfile", "load_balancer_profile"),
    "managednatgateway": ("natGatewayProfile", "nat_gateway_profile"),
}
"""The profile that names the outbound resources, by lower-cased outbound type."""
_NAT_LISTS = ("publicIpAddresses", "publicIpAddressesV6", "publicIpPrefixes", "publicIpPrefixesV6")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundRead:
    """What one read of a cluster's outbound addresses found."""

    keys: tuple[str, ...]
    """The accepted addresses and prefixes (`rules.egress.egress_key`), sorted."""
    unknown: tuple[str, ...] = ()
    """Resources whose address is not known (refused, or not allocated yet), sorted."""


def outbound_references(raw: dict[str, Any]) -> tuple[str, list[str]]:
    """A managed cluster's outbound type and the public IP and prefix IDs its load balancer
    or managed NAT gateway names (none for the other types), each once. Pure.

    Raises:
        NonRetryable: a reference list is not a list of IDs.
    """
    network = _field(raw.get("properties") or raw, "networkProfile", "network_profile")
    kind = str(_field(network, "outboundType", "outbound_type") or "loadBalancer")
    names = _PROFILES.get(kind.lower())
    if names is None:
        return kind, []
    profile = _field(network, *names)
    prefixes = _field(profile, "outboundIPPrefixes", "outbound_ip_prefixes")
    found = [
        *_ids(_field(profile, "effectiveOutboundIPs", "effective_outbound_i_ps")),
        *_ids(_field(prefixes, "publicIPPrefixes", "public_ip_prefixes")),
    ]
    return kind, list({ref.casefold(): ref for ref in found}.values())


class OutboundAddresses:
    """Reads a monitored cluster's outbound addresses and prefixes (the module docstring)."""

    def __init__(self, settings: Settings, credential: TokenCredential) -> None:
        self._settings = settings
        self._credential = credential
        self._endpoint = settings.arm_endpoint.rstrip("/")

    def read(self, cluster: MonitoredCluster) -> OutboundRead:
        """The cluster's accepted outbound addresses and prefixes, and the resources left
        unknown. Each refused value is logged as a warning.

        Raises:
            AuthError: Resource Manager refused a read (a 403 names the permission).
            NotFound: the cluster, or a resource it names, is gone.
            Retryable, NonRetryable: Resource Manager failed or answered something that is
                not the resource asked for, or more than `MAX_OUTBOUND_RESOURCES` are named.
        """
        limits = self._settings.limits
        with managed_cluster(self._credential, cluster.id, self._endpoint, limits) as (client, raw):
            kind, references = outbound_references(raw)
            reads = _Reads(client, self._endpoint, limits.arm_max_response_bytes, cluster)
            if kind.lower() == "userassignednatgateway":
                references = reads.nat_gateway_references(pool_subnets(raw, cluster.id)[0])
            elif not references:
                log_event(log, "egress.no_outbound_read", cluster=cluster.id, outbound_type=kind)
            for reference in references:
                reads.address(reference)
        return OutboundRead(tuple(sorted(reads.keys)), tuple(sorted(reads.unknown)))


class _Reads:
    """The resource reads of one `OutboundAddresses.read`, counted against the bound."""

    def __init__(
        self, client: ContainerServiceClient, endpoint: str, limit: int, cluster: MonitoredCluster
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self._limit = limit
        self._cluster = cluster
        self._count = 0
        self.keys: set[str] = set()
        self.unknown: set[str] = set()

    def nat_gateway_references(self, subnets: Iterable[str]) -> list[str]:
        """The public IP and prefix IDs of the NAT gateways on `subnets` (each read once)."""
        gateways: dict[str, str] = {}
        for subnet_id in subnets:
            url = subnet_url(self._endpoint, subnet_id)
            subnet = self._get(url, f"get subnet {subnet_id}", SUBNET_READ_PERMISSION, "subnet")
            nat = _field(_field(subnet, "properties"), "natGateway")
            if nat:
                for found in _ids([nat]):
                    gateways.setdefault(found.casefold(), found)
        references: dict[str, str] = {}
        for gateway_id in gateways.values():
            properties = _field(self._resource(gateway_id, "natgateways"), "properties")
            for key in _NAT_LISTS:
                for found in _ids(_field(properties, key) or []):
                    references.setdefault(found.casefold(), found)
        return list(references.values())

    def address(self, reference: str) -> None:
        """Read one public IP or prefix; note its accepted key, or it as unknown."""
        kind = _kind(reference)
        if kind not in _VALUES:
            raise NonRetryable(f"{reference[:300]!r} is not a public IP or prefix")
        value = _field(_field(self._resource(reference, kind), "properties"), _VALUES[kind])
        if not value:  # a public IP without its address yet
            self.unknown.add(reference)
            return
        try:
            key = egress_key(value)
        except InputError as error:
            raise NonRetryable(f"{reference}: {error}") from None
        problem = prefix_problem(key)
        if problem is None:
            self.keys.add(key)
            return
        self.unknown.add(reference)
        log_event(
            log,
            "egress.address_refused",
            logging.WARNING,
            cluster=self._cluster.id,
            resource=reference,
            address=key,
            reason=problem,
            message=(
                f"cluster {self._cluster.id}: outbound address {key} ({reference[:300]}) is "
                f"not registered: {problem}"
            ),
        )

    def _resource(self, resource_id: str, kind: str) -> dict[str, Any]:
        found = _NETWORK_ID_RE.fullmatch(resource_id)
        assert found is not None  # _kind matched it
        path, permission = _TYPES[kind]
        url = (
            f"{self._endpoint}/subscriptions/{quote(found['sub'])}/resourceGroups/"
            f"{quote(found['group'], safe='')}/providers/Microsoft.Network/{path}/"
            f"{quote(found['name'], safe='')}?api-version={NETWORK_API_VERSION}"
        )
        return self._get(url, f"get {resource_id}", permission, path)

    def _get(self, url: str, what: str, permission: str, on: str) -> dict[str, Any]:
        self._count += 1
        if self._count > MAX_OUTBOUND_RESOURCES:
            raise NonRetryable(
                f"cluster {self._cluster.id}: its outbound addresses name more than "
                f"{MAX_OUTBOUND_RESOURCES} resources"
            )
        needs = f"{permission} on the {on} (Network Reader, or a custom role with it)"
        return get_json(self._client, url, what, self._limit, needs)


def _kind(reference: str) -> str:
    found = _NETWORK_ID_RE.fullmatch(reference)
    if found is None:
        raise NonRetryable(f"{reference[:300]!r} is not a public IP, prefix or NAT gateway ID")
    return found["type"].lower()


def _field(source: object, name: str, snake: str | None = None) -> Any:
    """`source[name]` (or its snake_case spelling, as older models flatten it), or None."""
    if not isinstance(source, dict):
        return None
    value = source.get(name)
    return source.get(snake) if value is None and snake else value


def _ids(references: object) -> list[str]:
    """The IDs of a list of references (`{"id": …}`, or the ID itself).

    Raises:
        NonRetryable: it is not such a list.
    """
    if references is None:
        return []
    if not isinstance(references, list):
        raise NonRetryable("Resource Manager answered a non-list where references belong")
    found = []
    for reference in references:
        value = reference.get("id") if isinstance(reference, dict) else reference
        if not isinstance(value, str) or not value:
            raise NonRetryable("Resource Manager answered a reference without an ID")
        found.append(value)
    return found
