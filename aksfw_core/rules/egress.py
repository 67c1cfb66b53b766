"""A cluster's egress entries (DESIGN section 11), with `egressTags`: its outbound addresses
and prefixes under `aks.<cluster>.egress`, and each Static Egress Gateway's prefix under
`aks.<cluster>.egress.<namespace>.<gateway>` (the names are `tags.egress_tag`'s). Here: an
address or prefix as an IP-tag map key, a StaticGatewayConfiguration object read, the
entries built, and the entries an applied state holds, to be carried when a read fails.
Pure code: no I/O.

An address is registered as an address (`20.1.2.3`; a /32 or /128 prefix too), a wider
prefix as a network (PAN-OS 10.0 and later), as node subnets are. Whether a value may be
registered at all (bounds, reserved ranges) is the caller's check, the node subnets' one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aksfw_core.errors import InputError
from aksfw_core.rules.model import IpTags
from aksfw_core.rules.tags import egress_tag, network_text

GATEWAY_FIELD = "egressIpPrefix"
"""`status.egressIpPrefix` of a StaticGatewayConfiguration: the gateway's public prefix
(`20.1.2.0/31`), or in private mode a comma-separated list of its private addresses."""
MAX_GATEWAY_PREFIXES = 64
"""Values one gateway's `egressIpPrefix` may list (a /28 gateway pool has 16 nodes)."""


@dataclass(frozen=True)
class Gateway:
    """One StaticGatewayConfiguration, as egress tags read it."""

    namespace: str
    name: str
    prefixes: tuple[str, ...]
    """The values of its `status.egressIpPrefix`, as written (none before it is ready)."""


def egress_key(text: str) -> str:
    """An outbound address or prefix as an IP-tag map key: an address in `ipaddress`'s
    form (a /32 or /128 prefix is its address), any other prefix a network in normal form.

    Raises:
        InputError: it is neither.
    """
    value = text.strip() if isinstance(text, str) else ""
    if "/" not in value:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise InputError(f"{str(text)[:80]!r} is not an IP address or prefix") from None
    network = ipaddress.ip_network(network_text(value))
    full = network.prefixlen == network.max_prefixlen
    return str(network.network_address) if full else str(network)


def gateway_fields(obj: object) -> dict[str, Any]:
    """What egress tags read of one StaticGatewayConfiguration object: `namespace`, `name`
    and `egressIpPrefix` (empty when its status has none yet).

    Raises:
        InputError: the object names no namespace and name, or its status holds a
            non-string `egressIpPrefix` (a malformed object fails the list: a gateway that
            silently went missing would lose its tag).
    """
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(metadata, Mapping):
        raise InputError("a StaticGatewayConfiguration without metadata")
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
        raise InputError("a StaticGatewayConfiguration without a namespace and a name")
    status = obj.get("status") if isinstance(obj, Mapping) else None
    prefix = status.get(GATEWAY_FIELD) if isinstance(status, Mapping) else None
    if prefix is not None and not isinstance(prefix, str):
        raise InputError(f"StaticGatewayConfiguration {namespace}/{name}: a non-string prefix")
    return {"namespace": namespace, "name": name, GATEWAY_FIELD: prefix or ""}


def read_gateway(fields: Mapping[str, Any]) -> Gateway:
    """A `gateway_fields` result as a `Gateway`.

    Raises:
        InputError: its `egressIpPrefix` lists more than `MAX_GATEWAY_PREFIXES` values.
    """
    values = tuple(v.strip() for v in str(fields[GATEWAY_FIELD]).split(",") if v.strip())
    where = f"StaticGatewayConfiguration {fields['namespace']}/{fields['name']}"
    if len(values) > MAX_GATEWAY_PREFIXES:
        raise InputError(f"{where}: more than {MAX_GATEWAY_PREFIXES} egress prefixes")
    return Gateway(str(fields["namespace"]), str(fields["name"]), values)


def outbound_entries(cluster: str, keys: Iterable[str]) -> dict[str, frozenset[str]]:
    """The entries that register `keys` (`egress_key` results) under `aks.<cluster>.egress`."""
    tag = frozenset({egress_tag(cluster)})
    return {key: tag for key in keys}


def gateway_entries(cluster: str, keys: Mapping[Gateway, Iterable[str]]) -> IpTags:
    """The entries that register each gateway's keys (`egress_key` results) under its tag;
    gateways that share a prefix both tag it."""
    return merged(
        *({key: frozenset({gateway_tag(cluster, g)}) for key in found} for g, found in keys.items())
    )


def gateway_tag(cluster: str, gateway: Gateway) -> str:
    """`aks.<cluster>.egress.<namespace>.<gateway>`."""
    return egress_tag(cluster, gateway.namespace, gateway.name)


def applied_egress(
    cluster: str, applied_cluster: str, applied: IpTags, *, gateways: bool
) -> IpTags:
    """The egress entries of an applied state saved under the tag name `applied_cluster`:
    the outbound ones (`aks.<applied_cluster>.egress`), or with `gateways` the gateways'
    (`aks.<applied_cluster>.egress.…`), renamed under `cluster`."""
    old, new = egress_tag(applied_cluster), egress_tag(cluster)
    found: dict[str, frozenset[str]] = {}
    for key, members in applied.items():
        mine = frozenset(
            new + tag[len(old) :]
            for tag in members
            if (tag.startswith(f"{old}.") if gateways else tag == old)
        )
        if mine:
            found[key] = mine
    return found


def merged(*maps: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """The union of IP-tag maps, key by key."""
    result: dict[str, frozenset[str]] = {}
    for entries in maps:
        for key, members in entries.items():
            result[key] = result.get(key, frozenset()) | frozenset(members)
    return result
