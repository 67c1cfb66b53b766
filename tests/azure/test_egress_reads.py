"""A cluster's outbound addresses read from Resource Manager (DESIGN section 11, egress
tags): the real container-service client's pipeline against the fake ARM, for each
outbound type, within the bounds of every read (answer size, resource count), with the
failures classified (a 403 names the permission) and hostile values refused.
"""

from __future__ import annotations

import json
import logging

import pytest

from aksfw_core.azure import egress
from aksfw_core.azure.arm import NotFound
from aksfw_core.azure.egress import OutboundAddresses, OutboundRead, outbound_references
from aksfw_core.azure.events import ChangeKind, read_event, resolve
from aksfw_core.azure.identity import StaticToken
from aksfw_core.azure.inventory import Inventory, MonitoredCluster, inventory_from_json
from aksfw_core.config import parse_settings
from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable
from aksfw_local.fakes.arm import (
    NAT_GATEWAY_READ,
    PREFIX_READ,
    PUBLIC_IP_READ,
    SUBNET_READ,
    FakeArm,
    derived_outbound_ip,
)
from tests.support.arm import ARM_TOKEN, cluster_arm, resource_event
from tests.support.flow import CLUSTER, NODE_GROUP, SUB

OWN = "rg-net"


@pytest.fixture
def arm(monkeypatch, tmp_path):
    with cluster_arm(monkeypatch, tmp_path) as fake:
        yield fake


def read(arm: FakeArm, **limits: int) -> OutboundRead:
    settings = parse_settings({"limits": limits} if limits else {}, arm_endpoint=arm.url)
    cluster = MonitoredCluster(CLUSTER, "aks-prod1", "aks-prod1", NODE_GROUP, egress_tags=True)
    return OutboundAddresses(settings, StaticToken(ARM_TOKEN)).read(cluster)


def network_gets(arm: FakeArm) -> list[str]:
    return [r.path.lower() for r in arm.requests if r.authorized and "microsoft.network" in r.path.lower()]  # fmt: skip


def own_outbound(arm: FakeArm) -> tuple[str, str]:
    ip = arm.add_public_ip(SUB, OWN, "egress-ip", "20.9.9.9")
    prefix = arm.add_public_ip_prefix(SUB, OWN, "egress-prefix", "20.8.8.0/30")
    return ip, prefix


# ----------------------------------------------------------------------------- outbound types


def test_the_default_cluster_egresses_through_its_managed_outbound_ip(arm):
    assert read(arm) == OutboundRead((derived_outbound_ip(CLUSTER),))
    (get,) = network_gets(arm)
    assert f"/resourcegroups/{NODE_GROUP.lower()}/providers/microsoft.network/publicipaddresses/" in get  # fmt: skip


def test_a_load_balancer_with_own_ips_and_prefixes(arm):
    ip, prefix = own_outbound(arm)
    one = arm.add_public_ip_prefix(SUB, OWN, "one", "20.7.7.7/32")
    # A prefix ID under effectiveOutboundIPs is read as the prefix it names, and once.
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", [ip, prefix], [prefix.upper(), one])  # fmt: skip
    assert read(arm).keys == ("20.7.7.7", "20.8.8.0/30", "20.9.9.9")
    assert len(network_gets(arm)) == 3


def test_a_managed_nat_gateway(arm):
    ip, prefix = own_outbound(arm)
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", "managedNATGateway", [ip], [prefix])
    assert read(arm).keys == ("20.8.8.0/30", "20.9.9.9")


def test_a_user_assigned_nat_gateway_on_the_node_subnets(arm):
    ip, prefix = own_outbound(arm)
    v6 = arm.add_public_ip(SUB, OWN, "v6", "2603:1020::5")
    nat = arm.add_nat_gateway(SUB, OWN, "nat", [ip, v6], [prefix])
    ids = arm.add_virtual_network(SUB, OWN, "hub", {"nodes": "10.10.0.0/22", "bare": "10.11.0.0/24"})  # fmt: skip
    arm.attach_nat_gateway(ids["nodes"], nat)
    pools = {"system": ids["nodes"], "user": ids["nodes"].upper(), "other": ids["bare"]}
    arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", pools)
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", "userAssignedNATGateway")
    assert read(arm).keys == ("20.8.8.0/30", "20.9.9.9", "2603:1020::5")
    gets = network_gets(arm)
    assert sum("/subnets/" in g for g in gets) == 2  # each subnet once; the bare one has no NAT
    assert sum("/natgateways/" in g for g in gets) == 1


@pytest.mark.parametrize("kind", ["userDefinedRouting", "none"])
def test_routing_of_ones_own_reads_nothing_more(arm, kind):
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", kind)
    assert read(arm) == OutboundRead(())
    assert network_gets(arm) == []


UDR = {"properties": {"networkProfile": {"outboundType": "userDefinedRouting"}}}
# Older models' snake_case, and IDs given as text (the managed NAT gateway's prefixes).
SNAKE = {
    "network_profile": {
        "outbound_type": "managedNATGateway",
        "nat_gateway_profile": {
            "effective_outbound_i_ps": [{"id": "a"}],
            "outbound_ip_prefixes": {"public_ip_prefixes": ["b", "A"]},
        },
    }
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, ("loadBalancer", [])),
        (UDR, ("userDefinedRouting", [])),
        (SNAKE, ("managedNATGateway", ["A", "b"])),
    ],
)
def test_the_outbound_references_of_a_cluster(raw, expected):
    kind, found = outbound_references(raw)
    assert (kind, sorted(found)) == expected


# ----------------------------------------------------------------------------- bounds and failures


def test_an_oversized_answer_is_refused(arm):
    with pytest.raises(NonRetryable, match="larger than"):
        read(arm, armMaxResponseBytes=300)


def test_no_more_than_the_bound_of_resources_is_read(arm, monkeypatch):
    ips = [arm.add_public_ip(SUB, OWN, f"ip{n}", f"20.9.9.{n + 1}") for n in range(4)]
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", ips)
    monkeypatch.setattr(egress, "MAX_OUTBOUND_RESOURCES", 3)
    with pytest.raises(NonRetryable, match="more than 3 resources"):
        read(arm)
    assert len(network_gets(arm)) == 3


@pytest.mark.parametrize(
    ("permission", "outbound_type"),
    [
        (PUBLIC_IP_READ, "loadBalancer"),
        (PREFIX_READ, "loadBalancer"),
        (NAT_GATEWAY_READ, "userAssignedNATGateway"),
        (SUBNET_READ, "userAssignedNATGateway"),
    ],
)
def test_a_403_names_the_permission_that_is_missing(arm, permission, outbound_type):
    ip, prefix = own_outbound(arm)
    nat = arm.add_nat_gateway(SUB, OWN, "nat", [ip])
    ids = arm.add_virtual_network(SUB, OWN, "hub", {"nodes": "10.10.0.0/22"})
    arm.attach_nat_gateway(ids["nodes"], nat)
    arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": ids["nodes"]})
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", outbound_type, [ip], [prefix])
    arm.deny(permission)
    with pytest.raises(AuthError, match=permission) as raised:
        read(arm)
    assert raised.value.status == 403


def test_a_server_fault_is_retryable(arm):
    arm.inject(500, count=100, path_contains="/publicIPAddresses/")
    with pytest.raises(Retryable):
        read(arm)


def test_an_outbound_ip_that_is_gone_is_a_failed_read(arm):
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", [f"/subscriptions/{SUB}/resourceGroups/{OWN}/providers/Microsoft.Network/publicIPAddresses/gone"])  # fmt: skip
    with pytest.raises(NotFound):
        read(arm)


@pytest.mark.parametrize(
    "reference",
    [
        "not-an-id",
        f"/subscriptions/{SUB}/resourceGroups/{OWN}/providers/Microsoft.Compute/virtualMachines/vm",
        f"/subscriptions/{SUB}/resourceGroups/{OWN}/providers/Microsoft.Network/natGateways/nat",
        f"/subscriptions/{SUB}/resourceGroups/{OWN}/providers/Microsoft.Network/publicIPAddresses/a/../../x",
        f"/subscriptions/{SUB}/resourceGroups/{OWN}/providers/Microsoft.Network/publicIPAddresses/..",
        f"/subscriptions/{SUB}/resourceGroups/../providers/Microsoft.Network/publicIPAddresses/ip",
    ],
)  # fmt: skip
def test_a_reference_that_is_no_public_ip_or_prefix_is_refused_unread(arm, reference):
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", [reference])
    with pytest.raises(NonRetryable, match="is not a public IP"):
        read(arm)
    assert network_gets(arm) == []


@pytest.mark.parametrize(
    ("address", "prefix", "good"),
    [
        ("0.0.0.0", "20.8.8.0/30", ["20.8.8.0/30"]),
        ("20.9.9.9", "0.0.0.0/0", ["20.9.9.9"]),
        ("20.9.9.9", "224.0.0.0/4", ["20.9.9.9"]),
        ("127.0.0.1", "::/0", []),
        ("169.254.169.254", "fe80::/64", []),
    ],
)
def test_a_hostile_value_is_refused_and_leaves_its_resource_unknown(
    arm, caplog, address, prefix, good
):
    ip = arm.add_public_ip(SUB, OWN, "egress-ip", address)
    pf = arm.add_public_ip_prefix(SUB, OWN, "egress-prefix", prefix)
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", [ip], [pf])
    with caplog.at_level(logging.WARNING, logger="aksfw_core.azure.egress"):
        found = read(arm)
    assert list(found.keys) == good
    refusals = [json.loads(r.getMessage()) for r in caplog.records if "egress.address_refused" in r.getMessage()]  # fmt: skip
    assert sorted(r["resource"] for r in refusals) == list(found.unknown)
    assert len(found.unknown) == 2 - len(good)


def test_a_public_ip_without_its_address_yet_is_unknown(arm):
    pending = arm.add_public_ip(SUB, OWN, "pending", None)
    arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", [pending])
    assert read(arm) == OutboundRead((), (pending,))


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("global_value", "cluster_value", "expected"),
    [(None, None, False), (True, None, True), (True, False, False), (None, True, True)],
)
def test_egress_tags_opt_in_globally_and_per_cluster(global_value, cluster_value, expected):
    cluster: dict[str, object] = {"id": CLUSTER}
    if cluster_value is not None:
        cluster["egressTags"] = cluster_value
    document: dict[str, object] = {"clusters": [cluster]}
    if global_value is not None:
        document["egressTags"] = global_value
    settings = parse_settings(document)
    assert settings.egress_tags_for(settings.clusters[0]) is expected
    assert settings.egress_tags_for(None) is (global_value is True)


def test_the_inventory_document_carries_the_opt_in_only_when_on():
    plain = MonitoredCluster(CLUSTER, "aks-prod1", "aks-prod1", NODE_GROUP)
    opted = MonitoredCluster(CLUSTER, "aks-prod1", "aks-prod1", NODE_GROUP, egress_tags=True)
    assert "egressTags" not in plain.as_json()
    document = Inventory((opted,)).as_json()
    assert document["clusters"][0]["egressTags"] is True
    assert inventory_from_json(document).clusters[0].egress_tags is True
    document["clusters"][0]["egressTags"] = "yes"
    with pytest.raises(InputError, match="egressTags must be true or false"):
        inventory_from_json(document)


# ----------------------------------------------------------------------------- events


def _in(group: str, kind: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Network/{kind}/x"


@pytest.mark.parametrize(
    ("kind", "verb", "group", "resyncs"),
    [
        ("publicIPAddresses", "Write", NODE_GROUP, True),
        ("publicIPAddresses", "Delete", NODE_GROUP, True),
        ("publicIPPrefixes", "Write", NODE_GROUP.upper(), True),
        ("publicIPPrefixes", "Delete", NODE_GROUP, True),
        ("natGateways", "Write", NODE_GROUP, True),
        ("natGateways", "Delete", NODE_GROUP, True),
        # A NAT gateway or public IP of one's own names no cluster: the timer resync heals it.
        ("natGateways", "Write", OWN, False),
        ("publicIPAddresses", "Write", OWN, False),
    ],
)
def test_outbound_resource_changes_resolve_to_the_cluster_where_they_can(
    kind, verb, group, resyncs
):
    inventory = Inventory((MonitoredCluster(CLUSTER, "aks-prod1", "aks-prod1", NODE_GROUP),))
    operation = f"Microsoft.Network/{kind}/{verb.lower()}"
    resolution = resolve(read_event(resource_event(verb, _in(group, kind), operation)), inventory)
    expected = [(CLUSTER, ChangeKind.RESYNC)] if resyncs else []
    assert [(c.id, c.kind) for c in resolution.clusters] == expected
