"""A fake Azure Resource Manager (managed clusters, and the virtual networks their node
pools use) that the real Azure SDK accepts.

Serves HTTPS on 127.0.0.1 with a throw-away CA (``tls.py``; azure-core refuses to
send bearer tokens over plain HTTP) and answers the four ``ContainerServiceClient``
calls aksfw needs, with the URL templates and verbs of azure-mgmt-containerservice:

* ``GET  /subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters``
  (``managed_clusters.list()``),
* ``GET  /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters``
  (``managed_clusters.list_by_resource_group(rg)``),
* ``GET  .../managedClusters/{name}`` (``managed_clusters.get(rg, name)``),
* ``POST .../managedClusters/{name}/listClusterUserCredential``
  (``managed_clusters.list_cluster_user_credentials(rg, name, server_fqdn=, format=)``).

and the Microsoft.Network reads of node subnets, with the REST API's paths:

* ``GET  /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks``
  (paged, each VNet with its ``subnets`` inline),
* ``GET  .../virtualNetworks/{vnet}`` and ``GET .../virtualNetworks/{vnet}/subnets/{subnet}``.

and the reads of a cluster's outbound addresses (``egressTags``), one resource each:

* ``GET  .../providers/Microsoft.Network/publicIPAddresses/{name}`` (``properties.ipAddress``),
* ``GET  .../providers/Microsoft.Network/publicIPPrefixes/{name}`` (``properties.ipPrefix``),
* ``GET  .../providers/Microsoft.Network/natGateways/{name}`` (``properties.publicIpAddresses``
  and ``publicIpPrefixes``, lists of ``{"id": ...}``).

``add_cluster`` makes the cluster's managed outbound public IP in the node resource group
(its load balancer's ``effectiveOutboundIPs``), with an address derived from the cluster's
ID (``outbound_ip``); ``set_outbound`` gives it another outbound type and other outbound
resources (``add_public_ip``, ``add_public_ip_prefix``, ``add_nat_gateway``), and
``attach_nat_gateway`` puts a NAT gateway on a subnet.

A cluster's node pools (``agentPoolProfiles``) carry a ``vnetSubnetID`` once
``set_agent_pools`` gives them one; without it they use the AKS-managed VNet that
``add_cluster`` creates in the node resource group (``aks-vnet-…``/``aks-subnet``), as
AKS does. ``deny`` takes a permission away (``Microsoft.Network/virtualNetworks/subnets/read``
and the like): requests that need it answer 403 ``AuthorizationFailed`` naming it.

Like ARM, every request needs an ``api-version`` query parameter, path segments match
case-insensitively, lists are paged (``page_size`` items and an absolute ``nextLink``
with an opaque ``$skipToken``) and errors are ``{"error": {"code", "message"}}``.
Authentication is ``Authorization: Bearer <token>``; anything else answers 401
``InvalidAuthenticationToken`` with a ``WWW-Authenticate`` header (no claims challenge,
so the SDK's ``ARMChallengeAuthenticationPolicy`` surfaces it as
``ClientAuthenticationError``).

Tests add clusters with ``add_cluster`` (a realistic managed cluster JSON), queue
HTTP errors with ``inject`` (consumed by authenticated requests only, as ARM checks
the token before throttling) and read the request log in ``requests``; those and the
server lifecycle come from ``AzureFake`` (``azure.py``), shared with ``keyvault.py``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from .azure import AzureFake, error_body, error_response, json_response
from .server import HttpRequest, HttpResponse

DEFAULT_API_VERSION = "2026-08-01"
DEFAULT_TENANT_ID = "33333333-3333-3333-3333-333333333333"
#: Application ID of the "Azure Kubernetes Service AAD Server" app (kubelogin --server-id).
AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
#: Application ID of the "Azure Kubernetes Service AAD Client" app (kubelogin --client-id).
AKS_AAD_CLIENT_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"

_PROVIDER = "Microsoft.ContainerService"
_CLUSTER_TYPE = "Microsoft.ContainerService/ManagedClusters"
_KUBERNETES_VERSION = "1.32.7"

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = r"/resourcegroups/(?P<rg>[^/]+)"
_CLUSTERS = r"/providers/microsoft\.containerservice/managedclusters"
_LIST_SUB = re.compile(rf"^{_SUB}{_CLUSTERS}/?$", re.IGNORECASE)
_LIST_RG = re.compile(rf"^{_SUB}{_RG}{_CLUSTERS}/?$", re.IGNORECASE)
_CLUSTER = re.compile(rf"^{_SUB}{_RG}{_CLUSTERS}/(?P<name>[^/]+)/?$", re.IGNORECASE)
_USER_CREDENTIAL = re.compile(
    rf"^{_SUB}{_RG}{_CLUSTERS}/(?P<name>[^/]+)/listclusterusercredential/?$", re.IGNORECASE
)

_NETWORK = r"/providers/microsoft\.network/virtualnetworks"
_VNETS = re.compile(rf"^{_SUB}{_RG}{_NETWORK}/?$", re.IGNORECASE)
_VNET = re.compile(rf"^{_SUB}{_RG}{_NETWORK}/(?P<vnet>[^/]+)/?$", re.IGNORECASE)
_SUBNET = re.compile(
    rf"^{_SUB}{_RG}{_NETWORK}/(?P<vnet>[^/]+)/subnets/(?P<subnet>[^/]+)/?$", re.IGNORECASE
)
#: The permission each route needs (``deny`` takes one away).
CLUSTER_READ = "Microsoft.ContainerService/managedClusters/read"
VNET_READ = "Microsoft.Network/virtualNetworks/read"
SUBNET_READ = "Microsoft.Network/virtualNetworks/subnets/read"
PUBLIC_IP_READ = "Microsoft.Network/publicIPAddresses/read"
PREFIX_READ = "Microsoft.Network/publicIPPrefixes/read"
NAT_GATEWAY_READ = "Microsoft.Network/natGateways/read"
_OUTBOUND_TYPES = {
    "publicipaddresses": ("publicIPAddresses", PUBLIC_IP_READ),
    "publicipprefixes": ("publicIPPrefixes", PREFIX_READ),
    "natgateways": ("natGateways", NAT_GATEWAY_READ),
}
_OUTBOUND = re.compile(
    rf"^{_SUB}{_RG}/providers/microsoft\.network/"
    r"(?P<type>publicipaddresses|publicipprefixes|natgateways)/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)
USER_CREDENTIAL = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
MANAGED_VNET_PREFIX = "10.224.0.0/16"
"""The node subnet AKS gives a cluster without a VNet of its own (``aks-subnet``)."""

_ERROR_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "AuthorizationFailed",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class CredentialRequest(NamedTuple):
    """One ``listClusterUserCredential`` call (names as the caller spelled them)."""

    subscription_id: str
    resource_group: str
    name: str
    format: str | None
    server_fqdn: str | None


@dataclass
class _Cluster:
    body: dict[str, Any]
    kubeconfig: dict[str, Any] | None
    aad: bool


def _key(*parts: str) -> tuple[str, ...]:
    return tuple(part.lower() for part in parts)


def derived_outbound_ip(cluster_id: str) -> str:
    """The address ``add_cluster`` gives a cluster's managed outbound public IP by default:
    a public-looking IPv4 address that stays the same for the same cluster ID."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"outbound:{cluster_id.lower()}").bytes
    return f"20.{digest[0]}.{digest[1]}.{max(digest[2], 1)}"


class FakeArm(AzureFake):
    """In-process HTTPS Azure Resource Manager for managed clusters (see module docstring).

    ``url`` is the SDK's ``base_url`` and ``ca_file`` its ``connection_verify`` (both
    only while running). Tests may change ``token``, ``page_size``, ``tenant_id``,
    ``supported_api_versions`` (None accepts any api-version) and ``next_link_base`` at
    any time.
    """

    error_codes = _ERROR_CODES
    tls_prefix = "fake-arm-tls-"

    def __init__(
        self,
        token: str = "arm-dev-token",
        tls_dir: Path | None = None,
        page_size: int = 2,
        tenant_id: str = DEFAULT_TENANT_ID,
        supported_api_versions: set[str] | None = None,
    ) -> None:
        super().__init__(token, tenant_id, tls_dir)
        self.page_size = page_size
        self.supported_api_versions = supported_api_versions
        self.next_link_base: str | None = None
        """A hostile ARM: when set, a list's ``nextLink`` leads to this base URL (another
        origin) instead of this server's."""
        self.credential_requests: list[CredentialRequest] = []
        self._clusters: dict[tuple[str, ...], _Cluster] = {}
        self._resource_groups: set[tuple[str, ...]] = set()
        self._vnets: dict[tuple[str, ...], dict[str, Any]] = {}
        self._denied: set[str] = set()
        self._outbound: dict[tuple[str, ...], dict[str, Any]] = {}

    # ------------------------------------------------------------------ test helpers

    def add_cluster(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        *,
        location: str = "westeurope",
        tags: Mapping[str, str] | None = None,
        node_resource_group: str | None = None,
        aad: bool = False,
        kubeconfig: Mapping[str, Any] | None = None,
        kubernetes_version: str = _KUBERNETES_VERSION,
        power_state: str = "Running",
        managed_vnet_prefix: str | None = MANAGED_VNET_PREFIX,
        outbound_ip: str | None = None,
    ) -> dict[str, Any]:
        """Store (or replace) a managed cluster and return a copy of its JSON.

        The resource ID keeps the case the caller gave; lookups ignore case.
        ``kubeconfig`` is what ``listClusterUserCredential`` returns (serialized as
        JSON); without it a plausible one is generated per request. Its one node pool has
        no ``vnetSubnetID``: it uses the managed VNet made in the node resource group with
        one subnet of ``managed_vnet_prefix`` (None: no managed VNet). Its load balancer's
        one managed outbound public IP is made in the node resource group with the address
        ``outbound_ip`` (default: ``derived_outbound_ip`` of the cluster's ID).
        """
        node_rg = node_resource_group or f"MC_{resource_group}_{name}_{location}"
        resource_id = (
            f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
            f"/providers/{_PROVIDER}/managedClusters/{name}"
        )
        dns_prefix = f"{name}-dns"
        fqdn = f"{dns_prefix}-{secrets.token_hex(4)}.hcp.{location}.azmk8s.io"
        outbound_ip_id = (
            f"/subscriptions/{subscription_id}/resourceGroups/{node_rg}"
            f"/providers/Microsoft.Network/publicIPAddresses/{uuid.uuid4()}"
        )
        kubelet_identity = (
            f"/subscriptions/{subscription_id}/resourcegroups/{node_rg}"
            f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool"
        )
        properties: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "powerState": {"code": power_state},
            "kubernetesVersion": kubernetes_version,
            "currentKubernetesVersion": kubernetes_version,
            "dnsPrefix": dns_prefix,
            "fqdn": fqdn,
            "azurePortalFQDN": fqdn.replace(".hcp.", ".portal.hcp."),
            "agentPoolProfiles": [
                {
                    "name": "nodepool1",
                    "count": 3,
                    "vmSize": "Standard_D4ds_v5",
                    "osDiskSizeGB": 128,
                    "osDiskType": "Ephemeral",
                    "kubeletDiskType": "OS",
                    "maxPods": 250,
                    "type": "VirtualMachineScaleSets",
                    "provisioningState": "Succeeded",
                    "powerState": {"code": power_state},
                    "orchestratorVersion": kubernetes_version,
                    "currentOrchestratorVersion": kubernetes_version,
                    "mode": "System",
                    "osType": "Linux",
                    "osSKU": "AzureLinux",
                    "enableAutoScaling": False,
                    "enableNodePublicIP": False,
                }
            ],
            "servicePrincipalProfile": {"clientId": "msi"},
            "nodeResourceGroup": node_rg,
            "enableRBAC": True,
            "supportPlan": "KubernetesOfficial",
            "networkProfile": {
                "networkPlugin": "azure",
                "networkPluginMode": "overlay",
                "networkPolicy": "none",
                "networkDataplane": "azure",
                "loadBalancerSku": "standard",
                "loadBalancerProfile": {
                    "managedOutboundIPs": {"count": 1},
                    "effectiveOutboundIPs": [{"id": outbound_ip_id}],
                    "backendPoolType": "nodeIPConfiguration",
                },
                "podCidr": "10.244.0.0/16",
                "serviceCidr": "10.0.0.0/16",
                "dnsServiceIP": "10.0.0.10",
                "outboundType": "loadBalancer",
                "podCidrs": ["10.244.0.0/16"],
                "serviceCidrs": ["10.0.0.0/16"],
                "ipFamilies": ["IPv4"],
            },
            "maxAgentPools": 100,
            "identityProfile": {
                "kubeletidentity": {
                    "resourceId": kubelet_identity,
                    "clientId": str(uuid.uuid4()),
                    "objectId": str(uuid.uuid4()),
                }
            },
            "disableLocalAccounts": False,
            "oidcIssuerProfile": {"enabled": False},
        }
        if aad:
            properties["aadProfile"] = {
                "managed": True,
                "enableAzureRBAC": True,
                "adminGroupObjectIDs": None,
                "tenantID": self.tenant_id,
            }
        body: dict[str, Any] = {
            "id": resource_id,
            "location": location,
            "name": name,
            "type": _CLUSTER_TYPE,
            "kind": "Base",
            "properties": properties,
            "identity": {
                "type": "SystemAssigned",
                "principalId": str(uuid.uuid4()),
                "tenantId": self.tenant_id,
            },
            "sku": {"name": "Base", "tier": "Free"},
        }
        if tags is not None:
            body["tags"] = dict(tags)
        stored = _Cluster(
            body=body,
            kubeconfig=copy.deepcopy(dict(kubeconfig)) if kubeconfig is not None else None,
            aad=aad,
        )
        with self._lock:
            self._clusters[_key(subscription_id, resource_group, name)] = stored
            self._resource_groups.add(_key(subscription_id, resource_group))
        address = outbound_ip or derived_outbound_ip(resource_id)
        self.add_public_ip(subscription_id, node_rg, outbound_ip_id.rsplit("/", 1)[1], address)
        if managed_vnet_prefix is not None:
            digits = f"{uuid.uuid5(uuid.NAMESPACE_URL, resource_id.lower()).int % 10**8:08d}"
            self.add_virtual_network(
                subscription_id, node_rg, f"aks-vnet-{digits}", {"aks-subnet": managed_vnet_prefix}
            )
        return copy.deepcopy(body)

    def add_public_ip(
        self, subscription_id: str, resource_group: str, name: str, address: str | None
    ) -> str:
        """Store (or replace) a Standard static public IP with ``address`` (None: none
        allocated yet); returns its resource ID."""
        version = "IPv6" if address and ":" in address else "IPv4"
        properties: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": version,
            "idleTimeoutInMinutes": 4,
        }
        if address is not None:
            properties["ipAddress"] = address
        return self._store_outbound(
            subscription_id, resource_group, "publicIPAddresses", name, properties
        )

    def add_public_ip_prefix(
        self, subscription_id: str, resource_group: str, name: str, prefix: str
    ) -> str:
        """Store (or replace) a public IP prefix of ``prefix``; returns its resource ID."""
        properties = {
            "provisioningState": "Succeeded",
            "publicIPAddressVersion": "IPv6" if ":" in prefix else "IPv4",
            "prefixLength": int(prefix.rsplit("/", 1)[1]),
            "ipPrefix": prefix,
        }
        return self._store_outbound(
            subscription_id, resource_group, "publicIPPrefixes", name, properties
        )

    def add_nat_gateway(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        public_ips: Sequence[str] = (),
        prefixes: Sequence[str] = (),
    ) -> str:
        """Store (or replace) a NAT gateway with these public IP and prefix IDs; returns
        its resource ID."""
        properties = {
            "provisioningState": "Succeeded",
            "idleTimeoutInMinutes": 4,
            "publicIpAddresses": [{"id": ip} for ip in public_ips],
            "publicIpPrefixes": [{"id": prefix} for prefix in prefixes],
        }
        return self._store_outbound(
            subscription_id, resource_group, "natGateways", name, properties
        )

    def remove_outbound(self, resource_id: str) -> None:
        """Delete a public IP, prefix or NAT gateway (KeyError if absent)."""
        match = _OUTBOUND.match(resource_id)
        if match is None:
            raise KeyError(resource_id)
        with self._lock:
            del self._outbound[_key(*match.group("sub", "rg", "type", "name"))]

    def set_outbound(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        outbound_type: str = "loadBalancer",
        ips: Sequence[str] = (),
        prefixes: Sequence[str] = (),
    ) -> None:
        """Give a cluster this outbound type: for ``loadBalancer`` and ``managedNATGateway``
        its load balancer's or NAT gateway profile's ``effectiveOutboundIPs`` (``ips``) and
        ``outboundIPPrefixes`` (``prefixes``); for the others no profile (KeyError if absent)."""
        with self._lock:
            body = self._clusters[_key(subscription_id, resource_group, name)].body
            network = body["properties"]["networkProfile"]
            network["outboundType"] = outbound_type
            network.pop("loadBalancerProfile", None)
            network.pop("natGatewayProfile", None)
            profile: dict[str, Any] = {"effectiveOutboundIPs": [{"id": ip} for ip in ips]}
            if outbound_type == "loadBalancer":
                profile["outboundIPPrefixes"] = {"publicIPPrefixes": [{"id": p} for p in prefixes]}
                profile["backendPoolType"] = "nodeIPConfiguration"
                network["loadBalancerProfile"] = profile
            elif outbound_type == "managedNATGateway":
                profile["outboundIPPrefixes"] = {"publicIPPrefixes": list(prefixes)}
                profile["managedOutboundIPProfile"] = {"count": max(len(ips), 1)}
                network["natGatewayProfile"] = profile

    def attach_nat_gateway(self, subnet_id: str, nat_gateway_id: str | None) -> None:
        """Put a NAT gateway on a subnet (None: take it away); KeyError if absent."""
        match = _SUBNET.match(subnet_id)
        if match is None:
            raise KeyError(subnet_id)
        sub, rg, vnet, name = match.group("sub", "rg", "vnet", "subnet")
        with self._lock:
            for subnet in self._vnets[_key(sub, rg, vnet)]["properties"]["subnets"]:
                if str(subnet["name"]).lower() == name.lower():
                    subnet["properties"].pop("natGateway", None)
                    if nat_gateway_id is not None:
                        subnet["properties"]["natGateway"] = {"id": nat_gateway_id}
                    return
        raise KeyError(subnet_id)

    def _store_outbound(
        self, sub: str, rg: str, kind: str, name: str, properties: dict[str, Any]
    ) -> str:
        resource_id = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{kind}/{name}"
        )
        body = {
            "id": resource_id,
            "name": name,
            "type": f"Microsoft.Network/{kind}",
            "location": "westeurope",
            "etag": f'W/"{uuid.uuid4()}"',
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": properties,
        }
        with self._lock:
            self._outbound[_key(sub, rg, kind, name)] = body
            self._resource_groups.add(_key(sub, rg))
        return resource_id

    def remove_cluster(self, subscription_id: str, resource_group: str, name: str) -> None:
        """Delete a cluster (KeyError if absent) and, as AKS does, its node resource group's
        virtual networks; its own resource group keeps existing."""
        with self._lock:
            cluster = self._clusters.pop(_key(subscription_id, resource_group, name))
            node_rg = str(cluster.body["properties"]["nodeResourceGroup"])
            for key in [k for k in self._vnets if k[:2] == _key(subscription_id, node_rg)]:
                del self._vnets[key]
            for key in [k for k in self._outbound if k[:2] == _key(subscription_id, node_rg)]:
                del self._outbound[key]
            self._resource_groups.discard(_key(subscription_id, node_rg))

    def set_agent_pools(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        pools: Mapping[str, str | None],
    ) -> None:
        """Give a cluster these node pools: name → ``vnetSubnetID`` (None: the managed
        VNet). Each is shaped like the pool ``add_cluster`` made (KeyError if absent)."""
        with self._lock:
            body = self._clusters[_key(subscription_id, resource_group, name)].body
            template = body["properties"]["agentPoolProfiles"][0]
            profiles = []
            for index, (pool, subnet) in enumerate(pools.items()):
                profile = {**copy.deepcopy(template), "name": pool}
                profile["mode"] = "System" if index == 0 else "User"
                profile.pop("vnetSubnetID", None)
                if subnet is not None:
                    profile["vnetSubnetID"] = subnet
                profiles.append(profile)
            body["properties"]["agentPoolProfiles"] = profiles

    def add_virtual_network(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        subnets: Mapping[str, str | Sequence[str]],
        *,
        location: str = "westeurope",
    ) -> dict[str, str]:
        """Store (or replace) a virtual network with subnets (name → prefix, or a list of
        prefixes, given as ``addressPrefixes`` as dual-stack subnets are); returns subnet
        name → subnet resource ID."""
        vnet_id = (
            f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.Network/virtualNetworks/{name}"
        )
        subnet_bodies = []
        ids: dict[str, str] = {}
        for subnet, prefixes in subnets.items():
            ids[subnet] = f"{vnet_id}/subnets/{subnet}"
            properties: dict[str, Any] = {
                "provisioningState": "Succeeded",
                "privateEndpointNetworkPolicies": "Disabled",
                "privateLinkServiceNetworkPolicies": "Enabled",
            }
            if isinstance(prefixes, str):
                properties["addressPrefix"] = prefixes
            else:
                properties["addressPrefixes"] = list(prefixes)
            subnet_bodies.append(
                {
                    "id": ids[subnet],
                    "name": subnet,
                    "etag": f'W/"{uuid.uuid4()}"',
                    "type": "Microsoft.Network/virtualNetworks/subnets",
                    "properties": properties,
                }
            )
        body = {
            "id": vnet_id,
            "name": name,
            "type": "Microsoft.Network/virtualNetworks",
            "location": location,
            "etag": f'W/"{uuid.uuid4()}"',
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": str(uuid.uuid4()),
                "addressSpace": {"addressPrefixes": sorted({
                    p for s in subnet_bodies
                    for p in [s["properties"].get("addressPrefix"),
                              *s["properties"].get("addressPrefixes", [])] if p
                })},
                "subnets": subnet_bodies,
                "enableDdosProtection": False,
            },
        }  # fmt: skip
        with self._lock:
            self._vnets[_key(subscription_id, resource_group, name)] = body
            self._resource_groups.add(_key(subscription_id, resource_group))
        return ids

    def remove_virtual_network(self, subscription_id: str, resource_group: str, name: str) -> None:
        """Delete a virtual network (KeyError if absent)."""
        with self._lock:
            del self._vnets[_key(subscription_id, resource_group, name)]

    def deny(self, permission: str) -> None:
        """Take a permission away from the caller (``SUBNET_READ`` and the like): the
        requests that need it answer 403 ``AuthorizationFailed`` until ``allow``."""
        with self._lock:
            self._denied.add(permission.lower())

    def allow(self, permission: str) -> None:
        with self._lock:
            self._denied.discard(permission.lower())

    def add_resource_group(self, subscription_id: str, resource_group: str) -> None:
        """Make an (empty) resource group exist; unknown ones answer ResourceGroupNotFound."""
        with self._lock:
            self._resource_groups.add(_key(subscription_id, resource_group))

    def clusters(self) -> list[dict[str, Any]]:
        """Copies of every stored cluster's JSON."""
        with self._lock:
            return [copy.deepcopy(cluster.body) for cluster in self._clusters.values()]

    def reset_requests(self) -> None:
        super().reset_requests()
        with self._lock:
            self.credential_requests.clear()

    # ------------------------------------------------------------------ request handling

    def _dispatch(self, request: HttpRequest, path: str, query: dict[str, str]) -> HttpResponse:
        api_version = query.get("api-version")
        if not api_version:
            return error_response(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if (
            self.supported_api_versions is not None
            and api_version not in self.supported_api_versions
        ):
            return error_response(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'westeurope' and API "
                f"version '{api_version}' for type 'managedClusters'.",
            )
        return self._route(request.method, path, query)

    def _unauthorized(self, request: HttpRequest) -> HttpResponse:
        if "Authorization" not in request.headers:
            code, message = (
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        else:
            code, message = (
                "InvalidAuthenticationToken",
                "The access token is invalid.",
            )
        challenge = (
            f'Bearer authorization_uri="https://login.microsoftonline.com/{self.tenant_id}", '
            f'error="invalid_token", error_description="{message}"'
        )
        return json_response(401, error_body(code, message), {"WWW-Authenticate": challenge})

    def _route(self, method: str, path: str, query: dict[str, str]) -> HttpResponse:
        routes: list[tuple[re.Pattern[str], str]] = [
            (_LIST_SUB, "GET"),
            (_LIST_RG, "GET"),
            (_CLUSTER, "GET"),
            (_USER_CREDENTIAL, "POST"),
            (_VNETS, "GET"),
            (_VNET, "GET"),
            (_SUBNET, "GET"),
            (_OUTBOUND, "GET"),
        ]
        for pattern, allowed in routes:
            match = pattern.match(path)
            if match is None:
                continue
            if method != allowed:
                return error_response(
                    405,
                    "MethodNotAllowed",
                    f"The requested resource does not support http method '{method}'.",
                )
            groups = match.groupdict()
            # An outbound resource's permission depends on its type (`_get_outbound`).
            needed = {_VNETS: VNET_READ, _VNET: VNET_READ, _SUBNET: SUBNET_READ, _OUTBOUND: ""}.get(
                pattern, USER_CREDENTIAL if pattern is _USER_CREDENTIAL else CLUSTER_READ
            )
            if needed and needed.lower() in self._denied:
                return self._forbidden(needed, path)
            if pattern is _VNETS:
                return self._list_vnets(path, query, groups["sub"], groups["rg"])
            if pattern is _VNET:
                return self._get_vnet(groups["sub"], groups["rg"], groups["vnet"])
            if pattern is _OUTBOUND:
                return self._get_outbound(groups)
            if pattern is _SUBNET:
                return self._get_subnet(groups)
            if pattern is _LIST_SUB:
                return self._list(path, query, groups["sub"], None)
            if pattern is _LIST_RG:
                return self._list(path, query, groups["sub"], groups["rg"])
            if pattern is _CLUSTER:
                return self._get(groups["sub"], groups["rg"], groups["name"])
            return self._credentials(groups["sub"], groups["rg"], groups["name"], query)
        return error_response(
            404, "NotFound", f"The requested path '{path}' was not found by this fake."
        )

    def _forbidden(self, permission: str, scope: str) -> HttpResponse:
        return error_response(
            403,
            "AuthorizationFailed",
            f"The client 'aksfw' with object id '{uuid.UUID(int=7)}' does not have "
            f"authorization to perform action '{permission}' over scope '{scope}' or the "
            "scope is invalid. If access was recently granted, please refresh your credentials.",
        )

    def _list_vnets(self, path: str, query: dict[str, str], sub: str, rg: str) -> HttpResponse:
        with self._lock:
            if _key(sub, rg) not in self._resource_groups:
                return error_response(
                    404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
                )
            group = _key(sub, rg)
            selected = [
                copy.deepcopy(body) for key, body in self._vnets.items() if key[:2] == group
            ]
        return self._page(path, query, "/".join(_key(sub, rg, "vnets")), selected)

    def _get_vnet(self, sub: str, rg: str, name: str) -> HttpResponse:
        with self._lock:
            body = self._vnets.get(_key(sub, rg, name))
            if body is None:
                return self._missing(sub, rg, name, "Microsoft.Network/virtualNetworks")
            return json_response(200, copy.deepcopy(body))

    def _get_subnet(self, groups: Mapping[str, str]) -> HttpResponse:
        sub, rg, vnet, name = groups["sub"], groups["rg"], groups["vnet"], groups["subnet"]
        with self._lock:
            body = self._vnets.get(_key(sub, rg, vnet))
            if body is None:
                return self._missing(sub, rg, vnet, "Microsoft.Network/virtualNetworks")
            for subnet in body["properties"]["subnets"]:
                if str(subnet["name"]).lower() == name.lower():
                    return json_response(200, copy.deepcopy(subnet))
        return error_response(404, "NotFound", f"Resource {body['id']}/subnets/{name} not found.")

    def _get_outbound(self, groups: Mapping[str, str]) -> HttpResponse:
        kind, permission = _OUTBOUND_TYPES[groups["type"].lower()]
        sub, rg, name = groups["sub"], groups["rg"], groups["name"]
        path = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{kind}"
        if permission.lower() in self._denied:
            return self._forbidden(permission, f"{path}/{name}")
        with self._lock:
            body = self._outbound.get(_key(sub, rg, kind, name))
            if body is not None:
                return json_response(200, copy.deepcopy(body))
            return self._missing(sub, rg, name, f"Microsoft.Network/{kind}")

    def _missing(
        self, sub: str, rg: str, name: str, kind: str = f"{_PROVIDER}/managedClusters"
    ) -> HttpResponse:
        if _key(sub, rg) not in self._resource_groups:
            return error_response(
                404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )
        return error_response(
            404,
            "ResourceNotFound",
            f"The Resource '{kind}/{name}' under resource group '{rg}' was "
            "not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )

    def _get(self, sub: str, rg: str, name: str) -> HttpResponse:
        with self._lock:
            cluster = self._clusters.get(_key(sub, rg, name))
            if cluster is None:
                return self._missing(sub, rg, name)
            body = copy.deepcopy(cluster.body)
        return json_response(200, body)

    def _skip_token(self, scope: str, offset: int) -> str:
        raw = json.dumps({"s": scope, "o": offset}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _offset(self, token: str, scope: str) -> int | None:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            offset = int(data["o"])
        except (binascii.Error, ValueError, TypeError, KeyError):
            return None
        if data.get("s") != scope or offset < 0:
            return None
        return offset

    def _list(self, path: str, query: dict[str, str], sub: str, rg: str | None) -> HttpResponse:
        with self._lock:
            if rg is not None and _key(sub, rg) not in self._resource_groups:
                return error_response(
                    404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
                )
            selected = [
                copy.deepcopy(cluster.body)
                for key, cluster in self._clusters.items()
                if key[0] == sub.lower() and (rg is None or key[1] == rg.lower())
            ]
        return self._page(path, query, "/".join(_key(sub, rg or "")), selected)

    def _page(
        self, path: str, query: dict[str, str], scope: str, selected: list[dict[str, Any]]
    ) -> HttpResponse:
        """One page of a list, in resource ID order, with a ``nextLink`` while more follow."""
        offset = 0
        token = query.get("$skipToken") or query.get("$skiptoken")
        if token:
            parsed = self._offset(token, scope)
            if parsed is None:
                return error_response(
                    400, "InvalidSkipToken", "The skip token is invalid or expired."
                )
            offset = parsed
        selected.sort(key=lambda item: str(item["id"]).lower())
        page_size = max(self.page_size, 1)
        end = offset + page_size
        body: dict[str, Any] = {"value": selected[offset:end]}
        if end < len(selected):
            api_version = quote(query.get("api-version", DEFAULT_API_VERSION), safe="")
            base = self.next_link_base or self.url
            body["nextLink"] = (
                f"{base}{quote(path)}?api-version={api_version}"
                f"&%24skipToken={self._skip_token(scope, end)}"
            )
        return json_response(200, body)

    def _credentials(self, sub: str, rg: str, name: str, query: dict[str, str]) -> HttpResponse:
        kubeconfig_format = query.get("format")
        with self._lock:
            self.credential_requests.append(
                CredentialRequest(sub, rg, name, kubeconfig_format, query.get("server-fqdn"))
            )
            cluster = self._clusters.get(_key(sub, rg, name))
            if cluster is None:
                return self._missing(sub, rg, name)
            if cluster.kubeconfig is not None:
                config = copy.deepcopy(cluster.kubeconfig)
            else:
                config = self._generated_kubeconfig(cluster, kubeconfig_format)
        text = json.dumps(config, indent=2)
        value = base64.b64encode(text.encode()).decode()
        return json_response(200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]})

    def _generated_kubeconfig(
        self, cluster: _Cluster, kubeconfig_format: str | None
    ) -> dict[str, Any]:
        """A kubeconfig shaped like the ones AKS returns for a user credential."""
        body = cluster.body
        name = str(body["name"])
        resource_group = str(body["id"]).split("/")[4]
        user_name = f"clusterUser_{resource_group}_{name}"
        user: dict[str, Any]
        if cluster.aad and (kubeconfig_format or "exec").lower() == "azure":
            user = {
                "auth-provider": {
                    "name": "azure",
                    "config": {
                        "apiserver-id": AKS_AAD_SERVER_ID,
                        "client-id": AKS_AAD_CLIENT_ID,
                        "config-mode": "1",
                        "environment": "AzurePublicCloud",
                        "tenant-id": self.tenant_id,
                    },
                }
            }
        elif cluster.aad:
            user = {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "kubelogin",
                    "args": [
                        "get-token",
                        "--environment",
                        "AzurePublicCloud",
                        "--server-id",
                        AKS_AAD_SERVER_ID,
                        "--client-id",
                        AKS_AAD_CLIENT_ID,
                        "--tenant-id",
                        self.tenant_id,
                        "--login",
                        "devicecode",
                    ],
                    "env": None,
                    "installHint": (
                        "\nkubelogin is not installed which is required to connect to AAD "
                        "enabled cluster.\n\nTo learn more, please go to "
                        "https://aka.ms/aks/kubelogin\n"
                    ),
                    "provideClusterInfo": False,
                    "interactiveMode": "IfAvailable",
                }
            }
        else:
            user = {"token": secrets.token_hex(64)}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                        "server": f"https://{body['properties']['fqdn']}:443",
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": user_name}}],
            "current-context": name,
            "preferences": {},
            "users": [{"name": user_name, "user": user}],
        }
